"""Model runtimes (llama.cpp, OpenAI-compatible servers), model files and their discovery."""

import os

# llama.cpp's CPU threads meet at an OpenMP barrier after every operation. By default they
# spin there, and when another program holds a core, the spinning thread waits out whole
# time slices: measured on two cores with one other busy process, generation fell from 16 to
# 0.5 tokens/s. Passive waiting keeps it at 6.6 tokens/s (docs/benchmarks.md). It must be set
# before llama.cpp's OpenMP runtime loads, i.e. before the first ``import llama_cpp``, which
# only happens inside this package. A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
