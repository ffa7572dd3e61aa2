#include "workloads/data/ob_jpeg.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
/* jerror.h after jpeglib.h: it needs its types. */
#include <jerror.h>

#define MAX_PATH_LEN 4096

/* libjpeg reports errors through error_exit, which must not return: it
 * longjmps back to the ob_jpeg_* call that is running. */
typedef struct {
    struct jpeg_error_mgr manager;
    jmp_buf resume;
    char message[JMSG_LENGTH_MAX];
} error_sink;

struct ob_jpeg_file {
    struct jpeg_decompress_struct info;
    error_sink errors;
    FILE *stream;
    char path[MAX_PATH_LEN];
};

static void error_exit(j_common_ptr info) {
    error_sink *sink = (error_sink *)info->err;
    sink->manager.format_message(info, sink->message);
    longjmp(sink->resume, 1);
}

/* Warnings are ignored (ImageNet has files with a few stray bytes that
 * other decoders accept too), except premature end of file: libjpeg would
 * pad the rest of a truncated file with grey and carry on. */
static void emit_message(j_common_ptr info, int level) {
    if (level == -1 && info->err->msg_code == JWRN_JPEG_EOF) error_exit(info);
}

static int fail(const ob_jpeg_file *file, char *err, size_t err_len) {
    snprintf(err, err_len, "%s: corrupt or unsupported JPEG (%s): expected a readable JPEG image", file->path,
             file->errors.message);
    return 2;
}

void ob_jpeg_close(ob_jpeg_file *file) {
    if (!file) return;
    jpeg_destroy_decompress(&file->info);
    if (file->stream) fclose(file->stream);
    free(file);
}

int ob_jpeg_open(const char *path, ob_jpeg_file **out, int *width, int *height, char *err, size_t err_len) {
    *out = NULL;
    ob_jpeg_file *file = calloc(1, sizeof *file);
    if (!file) {
        snprintf(err, err_len, "%s: out of memory", path);
        return 2;
    }
    snprintf(file->path, sizeof file->path, "%s", path);
    file->stream = fopen(path, "rb");
    if (!file->stream) {
        snprintf(err, err_len, "%s: cannot open: expected a readable JPEG file", path);
        free(file);
        return 2;
    }
    file->info.err = jpeg_std_error(&file->errors.manager);
    file->errors.manager.error_exit = error_exit;
    file->errors.manager.emit_message = emit_message;
    jpeg_create_decompress(&file->info);
    if (setjmp(file->errors.resume)) {
        int status = fail(file, err, err_len);
        ob_jpeg_close(file);
        return status;
    }
    jpeg_stdio_src(&file->info, file->stream);
    jpeg_read_header(&file->info, TRUE);
    *width = (int)file->info.image_width;
    *height = (int)file->info.image_height;
    *out = file;
    return 0;
}

static bool reserve(ob_rgb8_image *image, size_t bytes) {
    if (bytes <= image->capacity) return true;
    unsigned char *grown = realloc(image->pixels, bytes);
    if (!grown) return false;
    image->pixels = grown;
    image->capacity = bytes;
    return true;
}

/* CMYK to RGB, in place over `pixels` 4-byte pixels (each 3-byte output
 * pixel lands at or before the input it came from). R = (1 - C)(1 - K)
 * with ink fractions C, K; Adobe-marked files (Photoshop, nearly all CMYK
 * JPEGs) store 255 - ink, so there R = c * k / 255 on the stored bytes. */
static void cmyk_to_rgb(unsigned char *data, size_t pixels, bool inverted) {
    for (size_t i = 0; i < pixels; i++) {
        const unsigned char *cmyk = data + 4 * i;
        unsigned k = inverted ? cmyk[3] : 255u - cmyk[3];
        unsigned rgb[3];
        for (int c = 0; c < 3; c++) {
            unsigned ink = inverted ? cmyk[c] : 255u - cmyk[c];
            rgb[c] = (ink * k + 127) / 255;
        }
        for (int c = 0; c < 3; c++) data[3 * i + c] = (unsigned char)rgb[c];
    }
}

int ob_jpeg_read(ob_jpeg_file *file, int scale_denom, ob_rgb8_image *image, char *err, size_t err_len) {
    struct jpeg_decompress_struct *info = &file->info;
    if (setjmp(file->errors.resume)) return fail(file, err, err_len);
    /* libjpeg-turbo converts YCbCr and grayscale to RGB itself; CMYK and
     * YCCK come out as CMYK and are converted by cmyk_to_rgb. */
    bool cmyk = info->jpeg_color_space == JCS_CMYK || info->jpeg_color_space == JCS_YCCK;
    info->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    info->scale_num = 1;
    info->scale_denom = (unsigned)scale_denom;
    jpeg_start_decompress(info);
    size_t row_bytes = (size_t)info->output_width * (size_t)info->output_components;
    if (!reserve(image, row_bytes * info->output_height)) {
        snprintf(err, err_len, "%s: out of memory for a %ux%u image", file->path, info->output_width,
                 info->output_height);
        return 2;
    }
    while (info->output_scanline < info->output_height) {
        JSAMPROW row = image->pixels + row_bytes * info->output_scanline;
        jpeg_read_scanlines(info, &row, 1);
    }
    jpeg_finish_decompress(info);
    image->width = (int)info->output_width;
    image->height = (int)info->output_height;
    if (cmyk) cmyk_to_rgb(image->pixels, (size_t)image->width * image->height, info->saw_Adobe_marker);
    return 0;
}

void ob_rgb8_image_free(ob_rgb8_image *image) {
    free(image->pixels);
    *image = (ob_rgb8_image){0};
}
