# HTTP/1.x parser, path normalisation and endpoint templates (area: http).
# Built as an object library so tests, fuzz and bench link only these
# objects (not the whole analyzer), and folded into kw_analyzer.
add_library(kw_http_obj OBJECT
  ${CMAKE_CURRENT_SOURCE_DIR}/h1.c
  ${CMAKE_CURRENT_SOURCE_DIR}/h1_fifo.c
  ${CMAKE_CURRENT_SOURCE_DIR}/h1_head.c
  ${CMAKE_CURRENT_SOURCE_DIR}/h1_fill.c
  ${CMAKE_CURRENT_SOURCE_DIR}/norm.c)
target_include_directories(kw_http_obj PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(kw_http_obj PUBLIC kw_base)
list(APPEND KW_ANALYZER_SRCS $<TARGET_OBJECTS:kw_http_obj>)
