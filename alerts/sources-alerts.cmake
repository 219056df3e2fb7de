# alerts/ sources (owner: alerts).
list(APPEND KW_ALERTS_SRCS
  ${CMAKE_CURRENT_SOURCE_DIR}/alert.c
  ${CMAKE_CURRENT_SOURCE_DIR}/alerts.c
  ${CMAKE_CURRENT_SOURCE_DIR}/al_util.c
  ${CMAKE_CURRENT_SOURCE_DIR}/outbox.c
  ${CMAKE_CURRENT_SOURCE_DIR}/deliver.c
  ${CMAKE_CURRENT_SOURCE_DIR}/deliver_ob.c
  ${CMAKE_CURRENT_SOURCE_DIR}/slack.c
  ${CMAKE_CURRENT_SOURCE_DIR}/sinktest.c
  ${CMAKE_CURRENT_SOURCE_DIR}/alerts_state.c)
