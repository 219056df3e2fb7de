# bench_stream: decode + flow + reassembly throughput as a ratio to a bare
# pcap_next_ex loop (not a ctest; run it by hand: bench_stream FILE [ROUNDS]).
add_executable(bench_stream ${CMAKE_CURRENT_SOURCE_DIR}/bench_stream.c)
target_link_libraries(bench_stream PRIVATE kw_capture kw_base)
