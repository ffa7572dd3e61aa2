# ob_option_if_found(OPTION FOUND DOC MISSING): the build's optional parts
# (oneDNN, CUDA, NCCL) default to on exactly when what they need was found;
# an option turned on by hand without it stops the configure with one line,
# "OPTION is on but MISSING", instead of failing later in the build.
function(ob_option_if_found option found doc missing)
  option(${option} "${doc}" ${${found}})
  if(${option} AND NOT ${found})
    message(FATAL_ERROR "${option} is on but ${missing}")
  endif()
endfunction()
