/* ob_jpeg: decodes one JPEG file to 8-bit RGB with libjpeg-turbo (the
 * libjpeg API), optionally downscaled by 2, 4 or 8 in the DCT domain.
 *
 * Two calls so the caller can choose the scale from the full-resolution
 * size: ob_jpeg_open reads the header, ob_jpeg_read decodes. Grayscale
 * files come out as R = G = B; CMYK and YCCK files (a few ImageNet images)
 * are converted to RGB here (see jpeg.c). A truncated file is an error, not
 * a grey-filled image. Every error is one line naming the file. */
#ifndef OB_JPEG_H
#define OB_JPEG_H

#include <stddef.h>

/* Pixels of a decoded image; `pixels` grows as needed and is reused. */
typedef struct {
    unsigned char *pixels; /* height rows of width * 3 bytes, R G B */
    int width, height;
    size_t capacity; /* bytes allocated at pixels */
} ob_rgb8_image;

typedef struct ob_jpeg_file ob_jpeg_file;

/* Opens path and reads its header: *width and *height are the
 * full-resolution size. Returns 0, or 2 with one line in err (*out NULL). */
int ob_jpeg_open(const char *path, ob_jpeg_file **out, int *width, int *height, char *err, size_t err_len);
/* Decodes at 1/scale_denom of the full size (scale_denom 1, 2, 4 or 8;
 * sides round up) into image. Returns 0, or 2 with one line in err. */
int ob_jpeg_read(ob_jpeg_file *file, int scale_denom, ob_rgb8_image *image, char *err, size_t err_len);
void ob_jpeg_close(ob_jpeg_file *file);

void ob_rgb8_image_free(ob_rgb8_image *image);

#endif
