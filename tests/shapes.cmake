# Tests of segment shapes (analyzer/path/shape.c), learned route templates
# (analyzer/shapes) and the evaluation on traffic shaped like 281 public
# APIs (kwsim apis + keywarden run, tests/shapes/api_eval.py).
kw_add_test(test_shape SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_shape.c
  LIBS kw_path PkgConfig::JANSSON LABELS shapes unit)
kw_add_test(test_routes SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_routes.c
  LIBS kw_shapes LABELS shapes unit)
kw_add_test(test_openapi SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_openapi.c
  LIBS kw_shapes LABELS shapes unit)
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  # All 281 APIs, learn 4 days, detect 1, seed 1 (docs/detection-results.md:
  # 92.5 %, 0.046, 95.8 % since rule 6). The bounds are the issue's targets
  # (agreement >= 90 %, false <= 0.1 per identity-day, recall >= 95 %),
  # which seed 1 meets; of the held-out seeds, 3 meets them (92.3 %, 0.096,
  # 96.5 %) and 2 misses the false-alert one by one alert (0.103). The run is deterministic (seeded
  # simulator, one worker).
  add_test(NAME shapes_api_eval
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/shapes/api_eval.py
            $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden>
            ${CMAKE_CURRENT_SOURCE_DIR}/data/apis/apis.jsonl ${CMAKE_BINARY_DIR}/shapes-eval
            --check 90,0.1,95)
  set_tests_properties(shapes_api_eval PROPERTIES LABELS "shapes;e2e;slow" TIMEOUT 900)
endif()
if(Python3_Interpreter_FOUND)
  # OpenAPI out and in (round trip), undocumented_endpoint, broken documents.
  add_test(NAME shapes_openapi_e2e
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/shapes/openapi_e2e.py
            $<TARGET_FILE:kwsim> $<TARGET_FILE:keywarden>
            ${CMAKE_CURRENT_SOURCE_DIR}/data/apis/apis.jsonl ${CMAKE_BINARY_DIR}/shapes-openapi)
  set_tests_properties(shapes_openapi_e2e PROPERTIES LABELS "shapes;e2e" TIMEOUT 300)
endif()
if(Python3_Interpreter_FOUND)
  # A real API (rule 6, docs/shapes.md): RabbitMQ's management API recorded
  # on loopback (tests/shapes/rabbitmq/record.sh), templates against the
  # routes the server documents. 17.6 % agreement when the rule landed
  # (11.2 % before): the vhost in the middle of /api/queues/{vhost}/{name}
  # is not named under an id-like member, so it stays literal.
  add_test(NAME shapes_rabbitmq_real
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/shapes/rabbitmq/check.py
            $<TARGET_FILE:keywarden> ${CMAKE_BINARY_DIR}/shapes-rabbitmq --min 17)
  set_tests_properties(shapes_rabbitmq_real PROPERTIES LABELS "shapes;e2e" TIMEOUT 120)
endif()
if(Python3_Interpreter_FOUND)
  # The same workload over HTTP/2 without TLS (curl --http2-prior-knowledge,
  # nghttpx in front of the same RabbitMQ): the same templates as HTTP/1.
  add_test(NAME shapes_rabbitmq_real_h2
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_SOURCE_DIR}/shapes/rabbitmq/check.py
            $<TARGET_FILE:keywarden> ${CMAKE_BINARY_DIR}/shapes-rabbitmq-h2 --min 17
            --pcap ${CMAKE_CURRENT_SOURCE_DIR}/data/real/rabbitmq-mgmt-h2.pcap)
  set_tests_properties(shapes_rabbitmq_real_h2 PROPERTIES LABELS "shapes;e2e;http2" TIMEOUT 120)
endif()
