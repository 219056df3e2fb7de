# Fuzz target of IP fragment reassembly: the decoder + defragmenter fed a
# sequence of IPv4/IPv6 fragments (area "defrag").
kw_add_fuzz(fuzz_defrag SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_defrag.c LIBS kw_capture)
