#!/usr/bin/env bash
# reskit bench --data: the input pipeline's own speed over an image folder (no model) prints its
# header, the stage times, the peak memory and images/s; --limit, --no-dct-scaling and the
# data-only flags without --data (a usage error) as documented.
#   tests/e2e/test_bench_data.sh path/to/reskit
set -uo pipefail
reskit=${1:?usage: test_bench_data.sh path/to/reskit}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/cli_lib.sh"

# Two classes of three pictures: a 32x24 JPEG and a 10x12 PNG (random pixels), written from base64.
jpg='/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAYEBQYFBAYGBQYHBwYIChAKCgkJChQODwwQFxQYGBcUFhYaHSUfGhsjHBYWICwgIyYnKSopGR8tMC0oMCUoKSj/2wBDAQcHBwoIChMKChMoGhYaKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCj/wAARCAAYACADASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwBttdySXMVtqMl7bT3E/nJcTny3mWPHzOQTkDy3yNygYjxsBZqzZIZrvTkW61CVJ7ZHV7ZmkeZSYWfaGd2BQpk4Xbyw3EDAG7p9qbi0e4uNOtojaxZu55UVDIyr9yNIyrE8eX/ERzkAZU2r3TDFfz2+nQPDZLFJKIZICwD43FI5VVsNweWDYZnIXcrYinP2bUdE7J6Wte3qt9ejt1srpk6lOF4VXZS6fE99Ut0tHf3fvtthzRPD4Ms5MzKLc+ebrareYjIDsiCMSDuWQ7Q2H+YsxBJN3RbePTbKZbXT4ZHt9z3ElqXtrjexbfuUlSMKsbAY5yAAdpNUI/swSOw1qe6LSSPtt1YgIyyMAqKoDBdwKHG4DaRnCLm1oskbBpYpzLFFJNLdMyLKz2+NpiGJDvCbscAngggD5W6J4hql7ukr/Jv1vf8AmS0STe2iMJucIc2qTvrrd8u9tE7vql1SasNOl6jbRPDYWst2oxE8ls2ZfLjOAMqOB5hlbG9c7U+YBDiSG0NsXs7DUJYLOdZFuS0yOHUo24MT83ykHcF2swYY4wVKK4vrFWtzSqSvy23s736tNWbVrp9DNVpT5oT15Y316vTV/e/nrvYfbqulW0D3MshW4Zd4b7scTiArIjmTcqL+7CtnI2nhc7KZfTwW97YPah7Wyez+0qgRd4mbgbwo2lhtkH3SQ2MYJzRRWtJTxTSnNpPm0/DS9+/9I6MNSWIbVTXS/q3G7+9t36+eiP/Z'
png='iVBORw0KGgoAAAANSUhEUgAAAAoAAAAMCAIAAADUCbv3AAABf0lEQVR4nAF0AYv+AP/kInnzvQaDZqhSwbuWUfPNGOwI9qTnJNJvrNKusABImUrROkxpVArV4nOodtbJRRm5HyQtnk0uDNofDHAAADXFv3QqL/beI5QXZNWLuQqhC0vc142KuUfI7IlXBMctn6bKmPMU90vnoNGvms7ZVDb8djK4I/orclvS6gDyf9sN8jfeJTzkiYuBDtPRswKrEQPk664+Nm7CZi8AjikPngIJKEYuMmDrI8XQAZBgltbw9k2lXBncQDr7BCJIQ6gex+SenHke4VXMa5IO6cEDfQWcKQC1NKTE9QT6MtOHA1R279bsgLBIxdfu/HCJMtuQaj2VCNuRljoCRGz5vQM6T0cqm7UNC30IktaE1//MURCO4vhakR+4AITzDcLpGwP/rNK+E2FeQz7A8ZEl+xDCQUtnok+nlQEvZGUJRKvu7rpY7ap5DoHfHrQGAwRQSAzD9aKjxMIC5frn6/OcmmL5dyptjdJb8HMLeXZ1lY0R8BD1Ie9Oy4y4QCaeh2gAAAAASUVORK5CYII='
for c in a b; do
  mkdir -p "$tmp/pics/$c"
  for i in 1 2; do echo "$jpg" | base64 -d >"$tmp/pics/$c/$i.jpg"; done
  echo "$png" | base64 -d >"$tmp/pics/$c/3.png"
done

expect_ok "data pipeline: 6 images of 16x16x3, batch 4, data workers 2, augment random-resized-crop,flip, JPEG DCT scaling on" \
  -- bench --data "$tmp/pics" --input 16,16,3 --augment random-resized-crop,flip --data-workers 2 --batch-size 4
grep -qE '^[0-9.]+ images/s$' "$tmp/out" || fail "bench --data: expected an 'images/s' line"
grep -qE '^peak_rss_mb=[0-9.]+$' "$tmp/out" || fail "bench --data: expected a peak_rss_mb= line"
grep -qE '^worker ms per image: decode [0-9.]+ crop\+resize [0-9.]+ augment [0-9.]+; batch assembly [0-9.]+$' \
  "$tmp/out" || fail "bench --data: expected the stage times"
expect_ok "data pipeline: 3 images of 8x8x1, batch 32, data workers 1, augment none, JPEG DCT scaling off" \
  -- bench --data "$tmp/pics" --input 8,8,1 --limit 3 --data-workers 1 --no-dct-scaling
expect_status 2 "--augment: expected it with --data" -- bench --model resnet20 --augment flip
expect_status 2 "--no-dct-scaling: expected it with --data" -- bench --model resnet20 --no-dct-scaling
expect_error "$tmp/missing" -- bench --data "$tmp/missing"
expect_status 2 "--model: measures a model; --data measures the input pipeline alone" \
  -- bench --data "$tmp/missing" --model resnet20
expect_status 2 "--augment: expected a list of pad-crop, flip and random-resized-crop, got 'spin'" \
  -- bench --data "$tmp/pics" --augment spin
finish
