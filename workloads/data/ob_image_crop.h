/* ob_image_crop: where a training or evaluation sample is cut from its
 * image, and the bilinear resample of that box into a normalised float
 * tensor row.
 *
 * Boxes are in source pixels with pixel i covering [i, i + 1), so a box
 * keeps its meaning when the image is decoded at a reduced scale
 * (ob_crop_box_scaled). */
#ifndef OB_IMAGE_CROP_H
#define OB_IMAGE_CROP_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/ob_rng.h"
#include "workloads/data/ob_jpeg.h"

/* Longest output side the resampler takes (its per-axis tables live on the stack). */
#define OB_CROP_MAX_SIDE 1024

/* torchvision's RandomResizedCrop defaults: area fraction in [0.08, 1],
 * aspect ratio (width / height) in [3/4, 4/3], 10 attempts. */
#define OB_RRC_MIN_AREA 0.08
#define OB_RRC_MAX_AREA 1.0
#define OB_RRC_MIN_RATIO (3.0 / 4.0)
#define OB_RRC_MAX_RATIO (4.0 / 3.0)
#define OB_RRC_ATTEMPTS 10
/* Stream indices one random-resized crop uses, from its first index on:
 * an area and a log-ratio per attempt, then the y and x offsets. */
#define OB_RRC_DRAWS (2 * OB_RRC_ATTEMPTS + 2)

/* [x, x + width) x [y, y + height) in source pixels. */
typedef struct {
    double x, y, width, height;
} ob_crop_box;

/* torchvision's RandomResizedCrop box for a width x height image: up to 10
 * attempts of area fraction ~ U[0.08, 1] and log aspect ratio ~ U[log 3/4,
 * log 4/3], rounded to whole pixels; the first that fits is placed at a
 * uniform integer offset. If none fits: the whole image, clamped to the
 * ratio range by trimming the longer side, centred. Draws indices
 * [first_draw, first_draw + OB_RRC_DRAWS) of stream. */
ob_crop_box ob_random_resized_crop(int width, int height, const ob_rng_stream *stream, uint64_t first_draw);

/* The evaluation box: resizing the shorter side to resize_side and cutting
 * the centred crop_side square is the same as cutting the centred square
 * of side shorter * crop_side / resize_side and resizing it to crop_side. */
ob_crop_box ob_center_crop_box(int width, int height, int resize_side, int crop_side);

/* Largest DCT downscale (8, 4, 2 or 1) that still leaves the box at least
 * out_side pixels on each axis: libjpeg then averages the detail the
 * resize would drop anyway, and the bilinear step below reduces by less
 * than 2x (unless 8 is reached), where bilinear sampling does not alias. */
int ob_dct_scale_denom(ob_crop_box box, int out_side);

/* The box of a full_width x full_height image in the coordinates of the
 * same image decoded at decoded_width x decoded_height. */
ob_crop_box ob_crop_box_scaled(ob_crop_box box, int full_width, int full_height, int decoded_width,
                               int decoded_height);

/* Per-channel normalisation of [0, 1] pixels: out = (pixel - mean) / std. */
typedef struct {
    float mean[3], std[3];
} ob_pixel_norm;

/* ImageNet's channel statistics (torchvision's values). */
extern const ob_pixel_norm ob_imagenet_norm;

/* Bilinear resample (half-pixel centres, edges clamped) of the box of
 * image into an out_side x out_side x 3 float row, mirrored left-right when
 * flip, normalised by norm. out_side <= OB_CROP_MAX_SIDE. */
void ob_resample_box(const ob_rgb8_image *image, ob_crop_box box, int out_side, bool flip,
                     const ob_pixel_norm *norm, float *out);

#endif
