#include "harness/h5_attributes.h"

#include <string.h>

hid_t ob_h5_string_type(size_t size_or_variable) {
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, size_or_variable);
    if (size_or_variable != H5T_VARIABLE) H5Tset_strpad(type, H5T_STR_NULLPAD);
    H5Tset_cset(type, H5T_CSET_UTF8);
    return type;
}

int ob_h5_write_attribute(hid_t object, const char *name, hid_t type, const void *value) {
    if (H5Aexists(object, name) > 0 && H5Adelete(object, name) < 0) return -1;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t written = attribute >= 0 ? H5Awrite(attribute, type, value) : -1;
    if (attribute >= 0) H5Aclose(attribute);
    H5Sclose(space);
    return written < 0 ? -1 : 0;
}

int ob_h5_write_string_attribute(hid_t object, const char *name, const char *value) {
    const char *text = value ? value : "";
    size_t length = strlen(text);
    hid_t type = ob_h5_string_type(length > 0 ? length : 1);
    int status = ob_h5_write_attribute(object, name, type, text);
    H5Tclose(type);
    return status;
}

int ob_h5_write_int_attribute(hid_t object, const char *name, int64_t value) {
    return ob_h5_write_attribute(object, name, H5T_NATIVE_INT64, &value);
}
