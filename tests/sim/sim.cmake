# kwsim: the traffic simulator (docs/simulator.md). Links only libc, zlib,
# libcrypto and libfyaml; it writes pcap itself.
add_executable(kwsim
  ${CMAKE_CURRENT_LIST_DIR}/kwsim.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_pkt.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_tcp.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_http.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_world.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_plan.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_incidents.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_render.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_tls.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_output.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_dense.c)
target_link_libraries(kwsim PRIVATE kw_options PkgConfig::ZLIB PkgConfig::CRYPTO
  PkgConfig::FYAML m)
set_target_properties(kwsim PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
