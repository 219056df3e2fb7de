# alerts tests (owner: alerts). test_alerts talks HTTP to a python3
# receiver on 127.0.0.1 (tests/tools/receiver.py): label e2e.
kw_add_test(test_alerts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_alerts.c
  LIBS kw_alerts PkgConfig::CURL PkgConfig::SQLITE LABELS e2e alerts TIMEOUT 180)
kw_add_test(test_alerts_unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_alerts_unit.c
  LIBS kw_alerts LABELS alerts)
# test_cli_flush runs `keywarden alerts flush|test` (skipped when the binary is absent).
if(TARGET keywarden)
  add_dependencies(test_alerts keywarden)
endif()
