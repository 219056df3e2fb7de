# Fuzz target of the stream half: flow table + TCP reassembly fed segments.
kw_add_fuzz(fuzz_reasm SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_reasm.c LIBS kw_capture)
