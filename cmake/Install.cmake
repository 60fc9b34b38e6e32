# Install rules besides the binary (its install(TARGETS) is in src/cli): man pages and shell
# completions. Destinations come from GNUInstallDirs, so CMAKE_INSTALL_PREFIX and
# `DESTDIR=... cmake --install` work as packagers expect.

# ---- man pages ---------------------------------------------------------------------------
# One scdoc source per page in docs/man: ocib.1.scd plus one ocib-VERB.1.scd per verb. A new
# verb needs only its page: ocib(1)'s COMMANDS list and SEE ALSO are generated here from the
# NAME line ("ocib-VERB - what it does") of every ocib-*.1.scd.
find_program(OCIB_SCDOC scdoc)
if(NOT OCIB_SCDOC)
  message(STATUS "scdoc not found: man pages will not be built or installed")
else()
  set(_man_src ${PROJECT_SOURCE_DIR}/docs/man)
  set(_man_out ${PROJECT_BINARY_DIR}/docs/man)
  file(GLOB _verb_pages CONFIGURE_DEPENDS ${_man_src}/ocib-*.1.scd)
  list(SORT _verb_pages)

  set(OCIB_MAN_COMMANDS "")
  set(_see_also "*ocib*(1)")
  foreach(page IN LISTS _verb_pages)
    get_filename_component(_name ${page} NAME)
    string(REGEX REPLACE "^ocib-(.+)\\.1\\.scd$" "\\1" _verb ${_name})
    file(STRINGS ${page} _summary REGEX "^ocib-${_verb} - ")
    if(NOT _summary)
      message(FATAL_ERROR "${page}: no NAME line of the form 'ocib-${_verb} - summary'")
    endif()
    list(GET _summary 0 _summary)
    string(REGEX REPLACE "^ocib-${_verb} - " "" _summary "${_summary}")
    string(SUBSTRING "${_summary}" 0 1 _first)
    string(SUBSTRING "${_summary}" 1 -1 _rest)
    string(TOUPPER "${_first}" _first)
    string(APPEND OCIB_MAN_COMMANDS
      "*${_verb}*\n\t${_first}${_rest}. See *ocib-${_verb}*(1).\n\n")
    string(APPEND _see_also ", *ocib-${_verb}*(1)")
  endforeach()
  string(STRIP "${OCIB_MAN_COMMANDS}" OCIB_MAN_COMMANDS)
  # ocib(1) does not refer to itself.
  string(REPLACE "*ocib*(1), " "" OCIB_MAN_SEE_ALSO "${_see_also}")

  set(_man_pages "")
  foreach(page IN LISTS _verb_pages ITEMS ${_man_src}/ocib.1.scd)
    get_filename_component(_name ${page} NAME)
    string(REGEX REPLACE "\\.scd$" "" _man ${_name})
    # configure_file makes CMake re-run when a page changes, so the generated COMMANDS list
    # follows edits to any verb's NAME line.
    configure_file(${page} ${_man_out}/${_name} @ONLY)
    add_custom_command(
      OUTPUT ${_man_out}/${_man}
      COMMAND ${OCIB_SCDOC} < ${_man_out}/${_name} > ${_man_out}/${_man}
      DEPENDS ${_man_out}/${_name}
      COMMENT "scdoc ${_name}"
      VERBATIM)
    list(APPEND _man_pages ${_man_out}/${_man})
  endforeach()
  add_custom_target(man ALL DEPENDS ${_man_pages})
  install(FILES ${_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# ---- shell completions -------------------------------------------------------------------
# The directories the shells' packages search for completions shipped by other packages.
# zsh's differs between distributions (Debian: vendor-completions, Fedora: site-functions).
set(OCIB_ZSH_COMPLETIONS_DIR "${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions"
  CACHE STRING "Where to install the zsh completion _ocib")
set(_comp ${PROJECT_SOURCE_DIR}/completions)
install(FILES ${_comp}/ocib.bash
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME ocib)
install(FILES ${_comp}/_ocib DESTINATION ${OCIB_ZSH_COMPLETIONS_DIR})
install(FILES ${_comp}/ocib.fish
  DESTINATION ${CMAKE_INSTALL_DATADIR}/fish/vendor_completions.d)

# ---- AppArmor ----------------------------------------------------------------------------
# The profile granting `userns` on hosts that restrict unprivileged user namespaces (Ubuntu
# 23.10+). Shipped as data: the Debian package's postinst puts it into /etc/apparmor.d only where
# the kernel has that restriction (elsewhere an AppArmor 3 parser would not know the rule).
install(FILES ${PROJECT_SOURCE_DIR}/packaging/apparmor/ocib
  DESTINATION ${CMAKE_INSTALL_DATADIR}/ocib/apparmor)
