# Fuzz target of the HTTP/1.x parser (area: http); seeds in corpus/fuzz_h1.
kw_add_fuzz(fuzz_h1 SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_h1.c LIBS kw_http1)
