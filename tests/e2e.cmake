# End-to-end detection tests (tests/e2e/detect.py, Python 3 stdlib): kwsim
# worlds through `keywarden run`, scored against the simulator's incidents
# and truth; audit trail against the truth; no secret in any output.
# Results and commands: docs/detection-results.md. Label "e2e"; the runs
# over weeks of traffic also "slow" (CI's ASan pass skips them).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET kwsim AND TARGET keywarden)
  set(_e2e_py ${CMAKE_CURRENT_SOURCE_DIR}/e2e/detect.py)
  set(_e2e_work ${CMAKE_BINARY_DIR}/e2e-tests)
  set(_e2e_worlds ${CMAKE_CURRENT_SOURCE_DIR}/sim/worlds)
  set(_e2e_bins $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden>)
  # Policy detections of issue 5 on the demo world (one day, under a second).
  add_test(NAME e2e_policy_demo COMMAND Python3::Interpreter ${_e2e_py} policy ${_e2e_bins}
    ${_e2e_worlds}/demo.yaml ${_e2e_work}/demo)
  # Every policy scenario and benign look-alike, 12 identities, 14 days.
  add_test(NAME e2e_policy_company COMMAND Python3::Interpreter ${_e2e_py} policy ${_e2e_bins}
    ${_e2e_worlds}/company.yaml ${_e2e_work}/company)
  # Baselines (issue 7): two weeks of learning, a week of incidents, at
  # sensitivity low, medium and high.
  add_test(NAME e2e_baseline COMMAND Python3::Interpreter ${_e2e_py} baseline ${_e2e_bins}
    ${_e2e_worlds}/baseline.yaml ${_e2e_work}/baseline)
  # Learning over two runs on one database equals learning over one run.
  add_test(NAME e2e_baseline_restart COMMAND Python3::Interpreter ${_e2e_py} restart
    ${_e2e_bins} ${_e2e_worlds}/baseline.yaml ${_e2e_work}/restart)
  # OAuth (issue 17): scoped and DPoP-bound tokens, one incident of each
  # OAuth kind, no false alert on the correct traffic around them.
  add_test(NAME e2e_policy_oauth COMMAND Python3::Interpreter ${_e2e_py} policy ${_e2e_bins}
    ${_e2e_worlds}/oauth.yaml ${_e2e_work}/oauth)
  # HTTP/2 and gRPC (issue 11): contractors on a gRPC API and an h2c API,
  # policy incidents and, after 14 days of learning, baseline ones.
  # /usr/bin/python3: the secrets check decodes HPACK with python3-hpack.
  add_test(NAME e2e_policy_grpc COMMAND /usr/bin/python3 ${_e2e_py} policy ${_e2e_bins}
    ${_e2e_worlds}/grpc.yaml ${_e2e_work}/grpc)
  # HTTP/2 under 1 % mirror loss, against the truth stream by stream.
  add_test(NAME e2e_h2_loss COMMAND /usr/bin/python3 ${_e2e_py} h2loss ${_e2e_bins}
    ${_e2e_worlds}/grpc.yaml ${_e2e_work}/h2loss)
  set_tests_properties(e2e_policy_demo e2e_policy_oauth e2e_policy_grpc e2e_h2_loss PROPERTIES
    LABELS "e2e" TIMEOUT 120)
  set_tests_properties(e2e_policy_company e2e_baseline e2e_baseline_restart
    PROPERTIES LABELS "e2e;slow" TIMEOUT 600)
endif()
