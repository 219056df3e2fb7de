# tests/: credentials, JWT and nDPI classification (area: cred).
kw_add_test(test_cred SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cred.c
  LIBS kw_analyzer PkgConfig::PCAP PkgConfig::CRYPTO LABELS unit TIMEOUT 60)
kw_add_test(test_classify SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_classify.c
  LIBS kw_analyzer PkgConfig::PCAP LABELS unit TIMEOUT 60)

# keywarden fingerprint, end to end (known answers from sha256sum). One
# trailing LF/CRLF is stripped, nothing else; empty input exits 2; nothing
# but the fingerprint goes to stdout.
if(TARGET keywarden)
  add_test(NAME cli_fingerprint
    COMMAND sh -c "set -e; K='$<TARGET_FILE:keywarden>'; \
      out=$(printf 'sk_live_4eC39HqLyjWDarjtT1zdp7dc\\r\\n' | \"$K\" fingerprint 2>/dev/null); \
      test \"$out\" = sha256:78a08441f4314f0a2833cfe58c62e555a162264206982cda39f6804f5048f570; \
      out=$(printf 'x\\n\\n' | \"$K\" fingerprint); \
      test \"$out\" = sha256:73cb3858a687a8494ca3323053016282f3dad39d42cf62ca4e79dda2aac7d9ac; \
      out=$(\"$K\" fingerprint --basic-user userrrrr); \
      test \"$out\" = sha256:545aa148a70e4dab22734f8bd492457eb2741463c02bc22693ef48a20400107b; \
      rc=0; printf '\\n' | \"$K\" fingerprint >/dev/null 2>&1 || rc=$?; test $rc -eq 2; \
      rc=0; \"$K\" fingerprint sk_live_secret >/dev/null 2>&1 || rc=$?; test $rc -eq 2; \
      echo ok")
  set_tests_properties(cli_fingerprint PROPERTIES LABELS "unit;cli" PASS_REGULAR_EXPRESSION "^ok")
endif()

# OAuth (issue 17): scopes, session age and DPoP proofs, with JWTs and
# proofs minted by libcrypto (tests/oauth_mint.c) through the real
# credential extraction, rules loader and judge.
kw_add_test(test_oauth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_oauth.c
  ${CMAKE_CURRENT_SOURCE_DIR}/oauth_mint.c
  LIBS kw_analyzer PkgConfig::CRYPTO LABELS unit TIMEOUT 60)

# kwmint: real JWTs and DPoP proofs on the command line, for e2e_oauth.
add_executable(kwmint ${CMAKE_CURRENT_SOURCE_DIR}/kwmint.c ${CMAKE_CURRENT_SOURCE_DIR}/oauth_mint.c)
target_link_libraries(kwmint PRIVATE kw_options PkgConfig::CRYPTO)
set_target_properties(kwmint PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

# A real HTTP API on loopback that ignores scopes, session age and DPoP;
# curl with minted tokens and proofs; tcpdump; keywarden over the
# recording: every incident found, correct traffic quiet, no secret at
# rest. Needs root; RUN_SERIAL like the other tcpdump-on-lo tests.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  add_test(NAME e2e_oauth COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_oauth.py
    $<TARGET_FILE:keywarden> $<TARGET_FILE:kwmint>)
  set_tests_properties(e2e_oauth PROPERTIES LABELS "e2e;live" TIMEOUT 120 SKIP_RETURN_CODE 77
    RUN_SERIAL TRUE)
endif()
