/* Internal to harness/: HDF5 string types and scalar root attributes,
 * shared by the run log (h5log.c) and the reference files (reference.c),
 * so both write strings the same way (UTF-8, exact length, null-padded). */
#ifndef OB_H5_ATTRIBUTES_H
#define OB_H5_ATTRIBUTES_H

#include <stdint.h>

#include <hdf5.h>

/* A UTF-8 string type of that many bytes, null-padded, or H5T_VARIABLE;
 * the caller closes it. */
hid_t ob_h5_string_type(size_t size_or_variable);
/* Writes (or replaces) a scalar attribute; 0 or -1. */
int ob_h5_write_attribute(hid_t object, const char *name, hid_t type, const void *value);
/* Exact length, so readers get the string back without padding; HDF5
 * string types need at least one byte, which "" provides as its
 * terminator. NULL is written as "". */
int ob_h5_write_string_attribute(hid_t object, const char *name, const char *value);
int ob_h5_write_int_attribute(hid_t object, const char *name, int64_t value);

#endif
