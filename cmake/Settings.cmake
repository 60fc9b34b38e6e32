# Shared compile settings and warnings as INTERFACE targets.
add_library(ocib_settings INTERFACE)
target_include_directories(ocib_settings INTERFACE ${PROJECT_SOURCE_DIR}/src)
target_compile_definitions(ocib_settings INTERFACE _GNU_SOURCE OCIB_VERSION="${PROJECT_VERSION}")

add_library(ocib_warnings INTERFACE)
target_compile_options(ocib_warnings INTERFACE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
  -Wcast-align -Wunused -Woverloaded-virtual -Wformat=2)
if(OCIB_WERROR)
  target_compile_options(ocib_warnings INTERFACE -Werror)
endif()
if(OCIB_SANITIZE)
  string(REPLACE ";" "," _san "${OCIB_SANITIZE}")
  target_compile_options(ocib_settings INTERFACE -fsanitize=${_san} -fno-omit-frame-pointer)
  target_link_options(ocib_settings INTERFACE -fsanitize=${_san})
endif()

# ocib_module(NAME SOURCES... [DEPS ...] [PRIVATE_DEPS ...]) -> static library ocib_NAME.
# DEPS are what its headers expose (users of the module see them too); PRIVATE_DEPS are its
# implementation's (linked, but their headers stay invisible to users: plan cannot include
# curl, the sandbox or the store).
function(ocib_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(ocib_${name} STATIC ${M_SOURCES})
  target_link_libraries(ocib_${name} PUBLIC ocib_settings ${M_DEPS} PRIVATE ocib_warnings ${M_PRIVATE_DEPS})
endfunction()

# ocib_unit_test(NAME SOURCES... DEPS ... [PREFIX P]) -> gtest binary registered with CTest
# (PREFIX: prepended to its CTest names, so `ctest -R` can select them by a lowercase word).
function(ocib_unit_test name)
  if(NOT OCIB_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "PREFIX" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_DEPS} GTest::gtest GTest::gtest_main ocib_warnings)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30 TEST_PREFIX "${T_PREFIX}" PROPERTIES TIMEOUT 120)
endfunction()
