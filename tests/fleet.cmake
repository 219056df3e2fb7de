# tests/: the fleet (sensors -> NATS JetStream -> judges), docs/fleet.md.
kw_add_test(test_fleet_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_wire.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_config.c
  LIBS kw_rules LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_merge SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_merge.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_spool SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_spool.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
# End to end with a real nats-server -js (tests/e2e_fleet.py): two sensors
# replay the two sites of tests/sim/worlds/fleet.yaml, judges judge; the
# reference is one `run` over the whole capture. Free ports on 127.0.0.1,
# so no lock is needed; exit 77 (skipped) when nats-server or tcpdump is
# missing (scripts/setup.sh installs both).
find_package(Python3 COMPONENTS Interpreter)
find_program(KW_NATS_SERVER nats-server PATHS /usr/sbin /usr/bin)
if(Python3_Interpreter_FOUND AND TARGET kwsim AND TARGET keywarden)
  if(NOT KW_NATS_SERVER)
    set(KW_NATS_SERVER nats-server)
  endif()
  foreach(_case happy tls nats judge_kill spool_full)
    add_test(NAME e2e_fleet_${_case} COMMAND Python3::Interpreter
      ${CMAKE_CURRENT_SOURCE_DIR}/e2e_fleet.py ${_case} $<TARGET_FILE:kwsim>
      $<TARGET_FILE:keywarden> ${KW_NATS_SERVER} ${CMAKE_CURRENT_SOURCE_DIR}/sim/worlds/fleet.yaml
      ${CMAKE_BINARY_DIR}/e2e-fleet/${_case})
    set_tests_properties(e2e_fleet_${_case} PROPERTIES LABELS "e2e;fleet" TIMEOUT 240
      SKIP_RETURN_CODE 77)
  endforeach()
endif()
