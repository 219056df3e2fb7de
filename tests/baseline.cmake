# Tests of the audit trail (store/audit.c) and the learned baselines
# (analyzer/baseline*.c).
kw_add_test(test_audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_audit.c LIBS kw_store
  LABELS store TIMEOUT 60)
kw_add_test(test_baseline SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_baseline.c LIBS kw_analyzer
  LABELS analyzer TIMEOUT 120)
# Memory and store size for 10k identities (not a ctest: bench_baseline [N] [DB]).
add_executable(bench_baseline ${CMAKE_CURRENT_SOURCE_DIR}/bench_baseline.c)
target_link_libraries(bench_baseline PRIVATE kw_analyzer kw_base)
