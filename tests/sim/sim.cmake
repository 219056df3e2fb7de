# kwsim: the traffic simulator (docs/simulator.md). Links only libc, zlib,
# libcrypto, libfyaml, jansson (API specs) and libnghttp2 (its HPACK
# deflater, for HTTP/2 and gRPC); it writes pcap itself.
pkg_check_modules(SIM_NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)
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
  ${CMAKE_CURRENT_LIST_DIR}/sim_h2.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_oauth.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_output.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_dense.c
  ${CMAKE_CURRENT_LIST_DIR}/sim_apis.c)
target_link_libraries(kwsim PRIVATE kw_options PkgConfig::ZLIB PkgConfig::CRYPTO
  PkgConfig::FYAML PkgConfig::JANSSON PkgConfig::SIM_NGHTTP2 m)
set_target_properties(kwsim PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

# Tests (label "sim"; the tshark oracle ones also "tshark", skipped with 77
# when tshark is missing). check_sim.py is stdlib-only Python 3.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND)
  set(_sim_py ${CMAKE_CURRENT_LIST_DIR}/check_sim.py)
  set(_sim_work ${CMAKE_BINARY_DIR}/sim-tests)
  set(_sim_demo ${CMAKE_CURRENT_LIST_DIR}/worlds/demo.yaml)
  set(_sim_company ${CMAKE_CURRENT_LIST_DIR}/worlds/company.yaml)
  add_test(NAME sim_determinism COMMAND Python3::Interpreter ${_sim_py} determinism
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/determinism)
  # the same for HTTP/2 and gRPC sessions (HPACK deflater state included)
  add_test(NAME sim_determinism_grpc COMMAND Python3::Interpreter ${_sim_py} determinism
    $<TARGET_FILE:kwsim> ${CMAKE_CURRENT_LIST_DIR}/worlds/grpc.yaml ${_sim_work}/determinism-grpc)
  add_test(NAME sim_loss COMMAND Python3::Interpreter ${_sim_py} loss
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/loss)
  add_test(NAME sim_tshark COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/tshark)
  add_test(NAME sim_tshark_vxlan COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/tshark-vxlan --encap vxlan:4242)
  add_test(NAME sim_tshark_erspan COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/tshark-erspan --encap erspan:7)
  add_test(NAME sim_tshark_geneve COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/tshark-geneve --encap geneve:99)
  add_test(NAME sim_tshark_qinq COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${_sim_demo} ${_sim_work}/tshark-qinq --encap qinq:100:200)
  # gRPC and h2c servers (HTTP/2 streams, HPACK by libnghttp2's deflater):
  # tshark decodes every request and grpc-status of 3 days as in the truth.
  add_test(NAME sim_tshark_grpc COMMAND Python3::Interpreter ${_sim_py} tshark
    $<TARGET_FILE:kwsim> ${CMAKE_CURRENT_LIST_DIR}/worlds/grpc.yaml ${_sim_work}/tshark-grpc
    --days 3)
  # Company world, 6 days (to the Sunday of the DST change): incidents present,
  # schedules kept in local time, fingerprints right, no secret in the outputs.
  add_test(NAME sim_world_company COMMAND Python3::Interpreter ${_sim_py} world
    $<TARGET_FILE:kwsim> ${_sim_company} ${_sim_work}/company 6)
  add_test(NAME sim_dense COMMAND Python3::Interpreter ${_sim_py} dense
    $<TARGET_FILE:kwsim> ${_sim_work}/dense)
  set_tests_properties(sim_determinism sim_determinism_grpc sim_loss sim_world_company PROPERTIES LABELS "sim" TIMEOUT 120)
  set_tests_properties(sim_tshark sim_tshark_grpc sim_tshark_vxlan sim_tshark_erspan sim_tshark_geneve sim_tshark_qinq sim_dense
    PROPERTIES LABELS "sim;tshark" TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
