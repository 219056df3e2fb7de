# fuzz/: the fleet's record decoder (area: fleet). A judge decodes what
# arrives from NATS: anything there may be damaged or hostile.
kw_add_fuzz(fuzz_fleet_wire SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_fleet_wire.c LIBS kw_fleet)
