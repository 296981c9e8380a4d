// Checks of the command line's flags, shared by the sub-commands (see commands.h). CLI11 runs a
// validator on the text of a flag the user gave, before the command starts, and prints
// "<flag>: <message>" and exits non-zero when it fails; every message here says what was expected
// and what was received.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "commands.h"
#include "reskit/models/registry.h"
#include "stream_data.h"

namespace reskit::cli {

namespace {

std::string list(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i)
    s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}

bool parse_integer(const std::string& text, long long& value) {
  try {
    std::size_t used = 0;
    value = std::stoll(text, &used);
    return used == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

bool parse_real(const std::string& text, double& value) {
  try {
    std::size_t used = 0;
    value = std::stod(text, &used);
    return used == text.size() && std::isfinite(value);
  } catch (const std::exception&) {
    return false;
  }
}

bool g_file_check_failed = false;

// A check of the file system: its failures are recorded for file_check_failed().
CLI::Validator file_check(std::function<std::string(std::string&)> check, const std::string& name) {
  return CLI::Validator(
      [check = std::move(check)](std::string& text) {
        std::string problem = check(text);
        if (!problem.empty()) g_file_check_failed = true;
        return problem;
      },
      name);
}

// Optimal string alignment distance: Levenshtein's, with a swap of neighbours as one edit.
std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

}  // namespace

bool file_check_failed() { return g_file_check_failed; }

std::string nearest_name(const std::string& word, const std::vector<std::string>& names) {
  // A typo: at most one edit per three letters (dashes aside), at least one. Not for one letter
  // ("-i"), which every other one-letter flag is one edit away from.
  const std::size_t letters = word.size() - std::min(word.find_first_not_of('-'), word.size());
  if (letters < 2) return "";
  const std::size_t allowed = std::max<std::size_t>(1, letters / 3);
  std::string best;
  std::size_t best_distance = allowed + 1;
  for (const auto& n : names) {
    const std::size_t d = edit_distance(word, n);
    if (d < best_distance) best = n, best_distance = d;
  }
  if (!best.empty()) return best;
  // A shortened name: the one name that begins with the word ("eval" for "evaluate").
  for (const auto& n : names) {
    if (n.compare(0, word.size(), word) != 0) continue;
    if (!best.empty()) return "";
    best = n;
  }
  return best;
}

const std::vector<std::string>& dtype_names() {
  static const std::vector<std::string> names = {
      "float32",
      "float64",
      "mixed_bfloat16",
  };
  return names;
}

CLI::Validator one_of(const std::vector<std::string>& names) {
  return CLI::Validator(
      [names](std::string& text) {
        for (const auto& n : names)
          if (text == n) return std::string();
        return "expected " + list(names) + ", got '" + text + "'";
      },
      [&names] {
        std::string s;
        for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
        return "{" + s + "}";
      }());
}

CLI::Validator model_name() {
  return CLI::Validator(
      [](std::string& text) {
        const auto names = model_names();
        for (const auto& n : names)
          if (text == n) return std::string();
        return "unknown model '" + text + "'; expected one of " + list(names);
      },
      "MODEL");
}

CLI::Validator model_file_or_name() {
  return CLI::Validator(
      [](std::string& text) {
        if (is_model_name(text)) return std::string();
        return existing_file()(text);
      },
      "MODEL");
}

void add_application_flags(CLI::App& cmd, AppFlags& f, AppFlagSet set) {
  if (set.weights) {
    cmd.add_option("--weights", f.weights,
                   "With a built-in model name: Keras weights (.h5, e.g. "
                   "resnet50_weights_tf_dim_ordering_tf_kernels.h5) loaded by layer name")
        ->check(existing_file());
  }
  if (set.top) {
    cmd.add_option("--include-top", f.include_top, "-imagenet models: keep Keras's classifier (true/false)")
        ->capture_default_str();
    cmd.add_option("--pooling", f.pooling, "-imagenet models without the top: pooling of the last block")
        ->capture_default_str()
        ->check(one_of({"none", "avg", "max"}));
  }
  if (set.preprocess) {
    cmd.add_option(
           "--preprocess", f.preprocess,
           "Input preprocessing: auto (the Keras Applications family: caffe for ResNet, tf for ResNetV2; "
           "else none), none (pixels / 255), caffe, tf or torch")
        ->capture_default_str()
        ->check(one_of({"auto", "none", "caffe", "tf", "torch"}));
  }
  if (set.class_index) {
    cmd.add_option(
           "--class-index", f.class_index,
           "Class ids and names in Keras's imagenet_class_index.json form (default: Keras's cached copy "
           "in ~/.keras/models, if any)")
        ->check(existing_file());
  }
}

CLI::Validator dtype_name() { return one_of(dtype_names()); }

CLI::Validator integer_at_least(long long min) {
  return CLI::Validator(
      [min](std::string& text) {
        long long v = 0;
        if (parse_integer(text, v) && v >= min) return std::string();
        return "expected an integer >= " + std::to_string(min) + ", got '" + text + "'";
      },
      "INT>=" + std::to_string(min));
}

CLI::Validator integer_in(long long min, long long max) {
  return CLI::Validator(
      [min, max](std::string& text) {
        long long v = 0;
        if (parse_integer(text, v) && v >= min && v <= max) return std::string();
        return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max) + ", got '" +
               text + "'";
      },
      "INT in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) {
        double v = 0;
        if (parse_real(text, v) && v > 0) return std::string();
        return "expected a number > 0, got '" + text + "'";
      },
      "NUMBER>0");
}

CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& text) {
        double v = 0;
        if (parse_real(text, v) && v >= 0) return std::string();
        return "expected a number >= 0, got '" + text + "'";
      },
      "NUMBER>=0");
}

CLI::Validator existing_file() {
  return file_check(
      [](std::string& text) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_regular_file(text, ec)) return std::string();
        if (fs::exists(text, ec)) return "expected a file, got '" + text + "', which is not a regular file";
        return "expected an existing file, got '" + text + "' (no such file)";
      },
      "FILE");
}

CLI::Validator existing_folder() {
  return file_check(
      [](std::string& text) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::is_directory(text, ec)) return std::string();
        if (fs::exists(text, ec)) return "expected a folder, got '" + text + "', which is not a folder";
        return "expected an existing folder, got '" + text + "' (no such folder)";
      },
      "DIR");
}

CLI::Validator writable_file() {
  return file_check(
      [](std::string& text) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (text.empty()) return std::string("expected a file name, got ''");
        if (fs::is_directory(text, ec)) return "expected a file name, got '" + text + "', which is a folder";
        const fs::path parent = fs::path(text).parent_path();
        const std::string folder = parent.empty() ? "." : parent.string();
        if (!fs::is_directory(folder, ec)) {
          return "expected a file in an existing folder, got '" + text + "' (no folder '" + folder + "')";
        }
        if (::access(folder.c_str(), W_OK | X_OK) != 0)
          return "expected a file in a writable folder, got '" + text + "' (cannot write to '" + folder +
                 "')";
        return std::string();
      },
      "FILE");
}

CLI::Validator writable_folder() {
  return file_check(
      [](std::string& text) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (text.empty()) return std::string("expected a folder, got ''");
        // The nearest existing folder on the way must be writable (the rest is created).
        fs::path p = fs::absolute(text, ec);
        while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
        if (!fs::is_directory(p, ec)) {
          return "expected a folder, got '" + text + "' ('" + p.string() + "' is not a folder)";
        }
        if (::access(p.c_str(), W_OK | X_OK) != 0)
          return "expected a writable folder, got '" + text + "' (cannot write to '" + p.string() + "')";
        return std::string();
      },
      "DIR");
}

CLI::Option* add_batch_size_flag(CLI::App& cmd, int& batch_size, const std::string& help) {
  return cmd.add_option("--batch-size,--batch", batch_size, help)
      ->capture_default_str()
      ->check(integer_at_least(1));
}

CLI::Option* add_threads_flag(CLI::App& cmd, int& threads) {
  return cmd.add_option("--threads", threads, "Threads (default: all cores)")->check(integer_at_least(1));
}

CLI::Option* add_limit_flag(CLI::App& cmd, std::int64_t& limit, const std::string& help) {
  return cmd.add_option("--limit", limit, help)->check(integer_at_least(0));
}

void add_exchange_flags(CLI::App& cmd, ExchangeFlags& f) {
  cmd.add_option(
         "--allreduce-dtype", f.dtype,
         "Under mpirun: the gradients' type on the wire, the weights' (default) or bfloat16 (half the "
         "bytes, summed in float32)")
      ->check(one_of({"float32", "float64", "bfloat16"}));
  cmd.add_option("--allreduce-bucket-mb", f.bucket_mb,
                 "Under mpirun: gradients summed in buckets of about this many MB while backward goes on; "
                 "0: one sum after backward")
      ->capture_default_str()
      ->check(non_negative_number());
  cmd.add_option("--allreduce-shared-memory", f.shared_memory,
                 "Under mpirun, every rank on one machine: buckets summed through shared memory (on) or "
                 "MPI's messages (off); the same bits")
      ->capture_default_str();
}

distributed::GradientExchange gradient_exchange(const ExchangeFlags& f, const std::string& dtype) {
  const std::string weights = dtype == "float64" ? "float64" : "float32";
  if (!f.dtype.empty() && f.dtype != "bfloat16" && f.dtype != weights) {
    throw UsageError("--allreduce-dtype: expected bfloat16 or the weights' " + weights + " (--dtype " +
                     dtype + "), got '" + f.dtype + "'");
  }
  if (f.dtype == "bfloat16" && weights != "float32")
    throw UsageError("--allreduce-dtype: bfloat16 expects float32 weights, got --dtype " + dtype);
  return {.bucket_bytes = static_cast<std::size_t>(f.bucket_mb * 1024.0 * 1024.0),
          .wire = f.dtype == "bfloat16" ? distributed::WireType::bfloat16 : distributed::WireType::native,
          .shared_memory = f.shared_memory};
}

void add_data_flags(CLI::App& cmd, DataFlags& f) {
  cmd.add_option("--augment", f.augment,
                 "Augmentation: a list of pad-crop (random crop after padding 2), flip (horizontal) and "
                 "random-resized-crop (Inception's, image folders); alone: pad-crop,flip")
      ->expected(0, 1)
      ->default_str(kDefaultAugment);
  cmd.add_option("--data-workers", f.workers,
                 "Threads decoding streamed data (default: the cores the training threads leave, at least 1)")
      ->check(integer_at_least(1));
  cmd.add_option("--cache", f.cache, "Streamed data: keep decoded samples after the first epoch (memory)")
      ->capture_default_str()
      ->check(one_of({"none", "memory"}));
  cmd.add_flag("--skip-bad-images", f.skip_bad,
               "Leave unreadable image files out with a warning (and a count each epoch) instead of failing");
  cmd.add_option("--input", f.input, "Image folders: resize every picture to H,W,C (e.g. 224,224,3)");
  cmd.add_option("--interpolation", f.interpolation, "Image folders: how --input resizes")
      ->capture_default_str()
      ->check(one_of({"bilinear", "nearest", "bicubic", "area"}));
  cmd.add_flag("--crop-to-aspect-ratio", f.crop_to_aspect_ratio,
               "Image folders: crop the centred box of --input's aspect ratio before resizing");
  cmd.add_option("--validation-split", f.validation_split,
                 "Image folders: validate on this fraction of the files, split as Keras does with --seed")
      ->check(CLI::Range(0.0, 1.0));
}

}  // namespace reskit::cli
