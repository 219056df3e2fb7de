# `limits:` of the config (issue 15): parsing, units, errors, the split
# across workers (test_limits); a flood of a million tiny flows through
# `keywarden run` with small memcaps, peak RSS and the stats' hits
# (e2e_limits; 200,000 flows and no RSS assertion on an ASan build).
kw_add_test(test_limits SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_limits.c
  LIBS kw_analyzer kw_rules LABELS "rules;analyzer")
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  add_test(NAME e2e_limits
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_limits.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_limits PROPERTIES LABELS "security;e2e" TIMEOUT 300)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # The same flood with two packet workers: the totals split, the hits of
  # both summed in the stats record (RSS printed, not asserted).
  add_test(NAME e2e_limits_workers
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_limits.py
            $<TARGET_FILE:keywarden> --workers 2)
  set_tests_properties(e2e_limits_workers PROPERTIES LABELS "security;e2e" TIMEOUT 300)
endif()
if(Python3_Interpreter_FOUND AND TARGET keywarden)
  # stream.max_buffer, stream.ooo_window, http.max_headers, http.max_pending,
  # http2.max_streams, classify.max_active honoured by `run`: real traffic
  # recorded on lo (root; else only the corpus and written-flow parts run),
  # the nghttp corpus capture, a written flow with a hole.
  add_test(NAME e2e_limits_keys
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/e2e_limits_keys.py
            $<TARGET_FILE:keywarden>)
  set_tests_properties(e2e_limits_keys PROPERTIES LABELS "security;e2e" TIMEOUT 180)
endif()
