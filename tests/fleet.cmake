# tests/: the fleet (sensors -> NATS JetStream -> judges), docs/fleet.md.
kw_add_test(test_fleet_wire SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_fleet_wire.c
  LIBS kw_fleet LABELS unit TIMEOUT 60)
