list(APPEND KW_CLI_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/cmd_run.c
     ${CMAKE_CURRENT_SOURCE_DIR}/run_report.c)
list(APPEND KW_CLI_DEFS KW_HAVE_CMD_RUN)
# run's least privilege (priv: libcap) and Prometheus endpoint (metrics:
# libmicrohttpd), issue 14.
pkg_check_modules(LIBCAP REQUIRED IMPORTED_TARGET libcap)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
list(APPEND KW_CLI_SRCS ${CMAKE_CURRENT_SOURCE_DIR}/priv.c ${CMAKE_CURRENT_SOURCE_DIR}/metrics.c)
list(APPEND KW_CLI_LIBS PkgConfig::LIBCAP PkgConfig::MHD)
# run as a fleet sensor (fleet.sensor, docs/fleet.md), issue 16.
list(APPEND KW_CLI_LIBS kw_fleet)
