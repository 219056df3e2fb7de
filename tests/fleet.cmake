# tests/: the fleet (sensors -> NATS JetStream -> judges), docs/fleet.md.
kw_add_test(test_fleet_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_wire.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_config.c
  LIBS kw_rules LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_merge SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_merge.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
kw_add_test(test_fleet_spool SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_spool.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
