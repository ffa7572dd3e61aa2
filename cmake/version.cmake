# Writes ob_version.h with the commit the build is made from, at build time
# (not configure time), so a run's git_commit attribute is never stale.
# A tree with uncommitted changes to tracked files is marked "-dirty".
execute_process(COMMAND git rev-parse --short=12 HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                OUTPUT_VARIABLE OB_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
if(NOT OB_GIT_COMMIT)
  set(OB_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE OB_GIT_CHANGES OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(OB_GIT_CHANGES)
    set(OB_GIT_COMMIT "${OB_GIT_COMMIT}-dirty")
  endif()
endif()
configure_file(${SOURCE_DIR}/harness/ob_version.h.in ${OUTPUT} @ONLY)
