# fuzz/: credential extraction and JWT decoding (area: cred).
kw_add_fuzz(fuzz_cred SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_cred.c LIBS kw_analyzer)
