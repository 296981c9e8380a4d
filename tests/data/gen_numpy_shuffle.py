#!/usr/bin/python3
# The permutations numpy.random.RandomState(seed).shuffle makes of a list range(n): what Keras's
# image_dataset_from_directory applies to its file list before validation_split. Run with Debian's
# /usr/bin/python3 (numpy); test_stream.cpp's KerasSplitShuffle holds its output.
import numpy as np

for n, seed in [(10, 0), (10, 1337), (37, 42), (300, 123456)]:
    v = list(range(n))
    np.random.RandomState(seed).shuffle(v)
    print(f"{{{n}, {seed}, {{{', '.join(map(str, v))}}}}},")
