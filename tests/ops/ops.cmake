# Operations tests (issue 14): least privilege, metrics, package, report.
# Python 3 stdlib drivers around the real binary; label "ops". Tests that
# create system users or capture on lo run alone (RUN_SERIAL): while the
# user `keywarden` exists, any `run` started as root drops to it.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  set(_ops ${CMAKE_CURRENT_LIST_DIR})
  add_test(NAME ops_privileges
    COMMAND Python3::Interpreter ${_ops}/e2e_priv.py $<TARGET_FILE:keywarden>)
  set_tests_properties(ops_privileges PROPERTIES LABELS "ops;e2e;live" TIMEOUT 180
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # The real Prometheus server scrapes `outputs.metrics` (live on lo).
  add_test(NAME ops_metrics
    COMMAND Python3::Interpreter ${_ops}/e2e_metrics.py $<TARGET_FILE:keywarden>
            ${PROJECT_SOURCE_DIR}/docs/metrics.md)
  set_tests_properties(ops_metrics PROPERTIES LABELS "ops;e2e;live" TIMEOUT 180
    SKIP_RETURN_CODE 77)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # Man pages agree with the binary's --help, docs/config.md and the alert kinds.
  add_test(NAME ops_man_pages
    COMMAND Python3::Interpreter ${_ops}/man_check.py $<TARGET_FILE:keywarden> ${PROJECT_SOURCE_DIR})
  set_tests_properties(ops_man_pages PROPERTIES LABELS "ops;unit")
  # cpack -G DEB, dpkg -i, the service as the unit runs it, dpkg --purge.
  # Alone (RUN_SERIAL): it installs /usr/bin/keywarden and the user keywarden.
  if(TARGET kwsim)
    add_test(NAME ops_package
      COMMAND Python3::Interpreter ${_ops}/e2e_package.py ${CMAKE_BINARY_DIR}
              $<TARGET_FILE:kwsim> ${PROJECT_SOURCE_DIR}/tests/sim/worlds/demo.yaml)
    set_tests_properties(ops_package PROPERTIES LABELS "ops;package;slow" TIMEOUT 300
      SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
  endif()
endif()
if(TARGET keywarden AND TARGET kwsim)
  # keywarden report on the demo world plus a hostile request recorded on lo,
  # rendered by chromium --headless; the page and its screenshot stay in
  # tests/ops/report/ of the build tree (the artefact).
  add_test(NAME ops_report
    COMMAND /usr/bin/python3 ${_ops}/e2e_report.py $<TARGET_FILE:keywarden> $<TARGET_FILE:kwsim>
            ${PROJECT_SOURCE_DIR}/tests/sim/worlds/demo.yaml ${CMAKE_BINARY_DIR}/tests/ops/report)
  # RUN_SERIAL: e2e_live_lo floods lo with tcpreplay, which would make tcpdump drop
  set_tests_properties(ops_report PROPERTIES LABELS "ops;e2e;live" TIMEOUT 240
    SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
endif()
