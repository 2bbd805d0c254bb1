# Debian's libtorch calls BLAS through libblas.so.3. Without libopenblas0-openmp that resolves
# to the reference BLAS, and DistilBERT runs about 20x slower. Say so loudly at configure time;
# the library repeats the check at run time (routenlp::runtime_info(), `routenlp doctor`).
set(_rn_openblas_omp "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3")
if(EXISTS "/etc/debian_version" AND NOT EXISTS "${_rn_openblas_omp}")
  message(WARNING
    "\n*** routenlp: libopenblas0-openmp is NOT installed. ***\n"
    "libtorch will use the reference BLAS and run ~20x slower.\n"
    "Run scripts/install-deps.sh (or apt-get install libopenblas0-openmp).\n")
endif()
