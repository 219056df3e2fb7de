# bench_capture: bare pcap_next_ex loop vs pcap_next_ex + dec_packet over a
# file given on the command line (not a ctest).
add_executable(bench_capture ${CMAKE_CURRENT_SOURCE_DIR}/bench_capture.c)
target_link_libraries(bench_capture PRIVATE kw_capture kw_base)
