# tests/: the TLS library (area: tls).
kw_add_test(test_tls SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tls.c LIBS kw_tls
  LABELS tls unit)
pkg_check_modules(LIBSSL REQUIRED IMPORTED_TARGET libssl)
kw_add_test(test_tls_decrypt SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tls_decrypt.c
  LIBS kw_tls PkgConfig::LIBSSL LABELS tls unit TIMEOUT 120)
# Real TLS on loopback (openssl s_server/curl, mTLS, HAProxy's own key log)
# recorded with tcpdump; tshark is the oracle (tests/e2e_tls.py). Needs root.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  add_test(NAME e2e_tls COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/e2e_tls.py
    $<TARGET_FILE:keywarden> ${CMAKE_CURRENT_SOURCE_DIR}/data/tls/suricata-eve.schema.json)
  # RUN_SERIAL: e2e_live_lo floods lo with tcpreplay, which would make tcpdump drop
  set_tests_properties(e2e_tls PROPERTIES LABELS "tls;e2e" TIMEOUT 180 SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE)
endif()

# Simulated worlds over TLS (kwsim --tls encrypts every session and writes
# the key log): the same detections with keys as in clear, and without keys
# the policy detections that need no HTTP (tests/e2e/detect.py meta).
if(Python3_Interpreter_FOUND AND TARGET kwsim AND TARGET keywarden)
  set(_tls_py ${CMAKE_CURRENT_SOURCE_DIR}/e2e/detect.py)
  set(_tls_worlds ${CMAKE_CURRENT_SOURCE_DIR}/sim/worlds)
  set(_tls_work ${CMAKE_BINARY_DIR}/e2e-tests)
  add_test(NAME e2e_tls_policy_demo COMMAND Python3::Interpreter ${_tls_py} policy
    $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden> ${_tls_worlds}/demo.yaml ${_tls_work}/tls-demo
    --tls)
  add_test(NAME e2e_tls_meta_demo COMMAND Python3::Interpreter ${_tls_py} meta
    $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden> ${_tls_worlds}/demo.yaml ${_tls_work}/tls-meta)
  add_test(NAME e2e_tls_policy_company COMMAND Python3::Interpreter ${_tls_py} policy
    $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden> ${_tls_worlds}/company.yaml
    ${_tls_work}/tls-company --tls)
  add_test(NAME e2e_tls_meta_company COMMAND Python3::Interpreter ${_tls_py} meta
    $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden> ${_tls_worlds}/company.yaml
    ${_tls_work}/tls-meta-company)
  # HTTP/2 and gRPC in TLS 1.3, ALPN h2 in the EncryptedExtensions
  # (/usr/bin/python3: python3-hpack for the secrets check).
  add_test(NAME e2e_tls_policy_grpc COMMAND /usr/bin/python3 ${_tls_py} policy
    $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden> ${_tls_worlds}/grpc.yaml ${_tls_work}/tls-grpc
    --tls)
  set_tests_properties(e2e_tls_policy_demo e2e_tls_meta_demo e2e_tls_policy_grpc PROPERTIES
    LABELS "tls;e2e" TIMEOUT 120)
  set_tests_properties(e2e_tls_policy_company e2e_tls_meta_company PROPERTIES
    LABELS "tls;e2e;slow" TIMEOUT 600)
endif()
