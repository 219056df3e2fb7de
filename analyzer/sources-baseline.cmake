# learned baselines per identity (analyzer/baseline*.c).
list(APPEND KW_ANALYZER_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/baseline.c
  ${CMAKE_CURRENT_SOURCE_DIR}/baseline_tz.c
  ${CMAKE_CURRENT_SOURCE_DIR}/baseline_db.c
  ${CMAKE_CURRENT_SOURCE_DIR}/baseline_show.c)
