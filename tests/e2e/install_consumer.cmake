# The "install" test: installs this build of reskit into a fresh prefix, builds tests/consumer
# (and the README's C++ example) against it with find_package(reskit), and runs both without
# LD_LIBRARY_PATH, so the installed package, its RUNPATHs and its private dependencies are what
# is checked. Run by CTest as
#   cmake -DRESKIT_BINARY_DIR=... -DCONSUMER_SOURCE_DIR=... -DREADME=... -DWORK_DIR=... \
#         -DGENERATOR=... [-DMAKE_PROGRAM=...] -DCXX_COMPILER=... -DCONFIG=... \
#         [-DCXX_FLAGS=...] [-DLINKER_FLAGS=...] -DSHARED=ON|OFF -P install_consumer.cmake
cmake_minimum_required(VERSION 3.25)

foreach(var RESKIT_BINARY_DIR CONSUMER_SOURCE_DIR README WORK_DIR GENERATOR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "install_consumer.cmake: expected -D${var}=..., got nothing")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# 1. Install into the temporary prefix.
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${RESKIT_BINARY_DIR}" --prefix "${prefix}" --config "${CONFIG}"
                OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
include(GNUInstallDirs)
set(libdir "${prefix}/${CMAKE_INSTALL_LIBDIR}")
foreach(f include/reskit/reskit.h bin/reskit ${CMAKE_INSTALL_LIBDIR}/cmake/reskit/reskitConfig.cmake
        ${CMAKE_INSTALL_LIBDIR}/cmake/reskit/reskitConfigVersion.cmake
        ${CMAKE_INSTALL_LIBDIR}/cmake/reskit/reskitTargets.cmake)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install: expected ${prefix}/${f} to be installed, it is missing")
  endif()
endforeach()
file(GLOB libs "${libdir}/libreskit.*")
if(NOT libs)
  message(FATAL_ERROR "install: expected libreskit in ${libdir}, found nothing")
endif()

# 2. The README's C++ example (the first ```cpp block), built beside the consumer.
file(READ "${README}" readme)
string(FIND "${readme}" "```cpp\n" begin)
if(begin EQUAL -1)
  message(FATAL_ERROR "${README}: expected a ```cpp example block, found none")
endif()
math(EXPR begin "${begin} + 7")
string(SUBSTRING "${readme}" ${begin} -1 rest)
string(FIND "${rest}" "\n```" end)
string(SUBSTRING "${rest}" 0 ${end} example)
file(WRITE "${WORK_DIR}/readme_example.cpp" "${example}\n")

# 3. Configure and build the consumer against the prefix only (no package registry).
set(configure_args -S "${CONSUMER_SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
    "-DREADME_EXAMPLE=${WORK_DIR}/readme_example.cpp")
if(MAKE_PROGRAM)
  list(APPEND configure_args "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(CXX_FLAGS)
  list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
endif()
if(LINKER_FLAGS)
  list(APPEND configure_args "-DCMAKE_EXE_LINKER_FLAGS=${LINKER_FLAGS}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" ${configure_args} OUTPUT_QUIET COMMAND_ERROR_IS_FATAL ANY)
file(STRINGS "${build}/CMakeCache.txt" found REGEX "^reskit_DIR:")
if(NOT found MATCHES "^reskit_DIR:PATH=${prefix}/")
  message(FATAL_ERROR "consumer: expected reskit to be found under ${prefix}, got '${found}'")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${build}" --config "${CONFIG}" COMMAND_ERROR_IS_FATAL ANY)

# Runs a program without LD_LIBRARY_PATH; fails unless it exits 0 and prints `expected`.
function(run_and_expect what expected)
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH ${ARGN}
                  WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what}: expected exit status 0, got ${rc}\nstdout:\n${out}\nstderr:\n${err}")
  endif()
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${what}: expected output containing '${expected}', got:\n${out}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

find_program(consumer NAMES consumer PATHS "${build}" "${build}/${CONFIG}" NO_DEFAULT_PATH REQUIRED)
find_program(readme_example NAMES readme_example PATHS "${build}" "${build}/${CONFIG}" NO_DEFAULT_PATH REQUIRED)
execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=LD_LIBRARY_PATH "${consumer}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(STRIP "${out}" out)
if(NOT rc EQUAL 0 OR NOT out STREQUAL "23600006")
  message(FATAL_ERROR "consumer: expected exit 0 and output 23600006, got exit ${rc}, output '${out}'\n${err}")
endif()
message(STATUS "consumer: prints 23600006")
run_and_expect("README example" "Total params: 23,600,006" "${readme_example}")
run_and_expect("installed CLI" "Total params: 23,600,006" "${prefix}/bin/reskit" summary resnet50)

# 4. A shared libreskit keeps its dependencies private: the consumer needs only libreskit.
find_program(READELF readelf)
if(SHARED AND READELF)
  execute_process(COMMAND "${READELF}" -d "${consumer}" OUTPUT_VARIABLE dynamic COMMAND_ERROR_IS_FATAL ANY)
  string(REGEX MATCHALL "\\(NEEDED\\)[^\n]*" needed "${dynamic}")
  if(NOT needed MATCHES "libreskit\\.so")
    message(FATAL_ERROR "consumer: expected libreskit.so among its needed libraries, got ${needed}")
  endif()
  if(needed MATCHES "dnnl|openblas|gomp|fmt")
    message(FATAL_ERROR "consumer: expected reskit's dependencies to stay private, got ${needed}")
  endif()
  message(STATUS "consumer: needs libreskit only (oneDNN, OpenBLAS, OpenMP, fmt stay private)")
endif()
