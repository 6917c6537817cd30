"""Model runtimes (llama.cpp, OpenAI-compatible servers), model files and their discovery."""

import os

# llama.cpp's CPU threads meet at an OpenMP barrier after every operation. By default they
# spin there, and when another program holds a core, the spinning thread waits out whole
# time slices: on two cores beside one busy program, generation ran at 6.3 tokens/s spinning
# and 10.4 waiting (0.5 against 6.6 with more load; idle, 21.2 against 18.1: the price). See
# docs/benchmarks.md "Threads and waiting". It must be set
# before llama.cpp's OpenMP runtime loads, i.e. before the first ``import llama_cpp``, which
# only happens inside this package. A value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
