# analyzer/: the policy judge (rules -> findings), area: rules.
list(APPEND KW_ANALYZER_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/judge_policy.c)
