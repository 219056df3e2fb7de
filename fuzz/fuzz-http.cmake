# Fuzz target of the HTTP/1.x parser (area: http); seeds in corpus/fuzz_h1.
kw_add_fuzz(fuzz_h1 SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_h1.c LIBS kw_http1)
# Fuzz target of the HTTP/2 reader (area: http2); seeds in corpus/fuzz_h2,
# cut from the recorded captures by tests/tools/make_h2_seeds.py.
kw_add_fuzz(fuzz_h2 SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_h2.c LIBS kw_http2)
