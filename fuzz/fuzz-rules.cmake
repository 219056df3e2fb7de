kw_add_fuzz(fuzz_rules SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_rules.c LIBS kw_rules)
