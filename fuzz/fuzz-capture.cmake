# Fuzz targets of the capture decode half (the stream half has its own).
kw_add_fuzz(fuzz_dec SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_dec.c LIBS kw_capture)
