#include "workloads/data/ob_image_crop.h"

#include <math.h>

const ob_pixel_norm ob_imagenet_norm = {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};

/* Index of each draw inside one attempt, and of the offsets after the attempts. */
enum { DRAW_AREA, DRAW_LOG_RATIO, DRAWS_PER_ATTEMPT };
enum { DRAW_OFFSET_Y = DRAWS_PER_ATTEMPT * OB_RRC_ATTEMPTS, DRAW_OFFSET_X };

static double uniform_in(const ob_rng_stream *stream, uint64_t index, double low, double high) {
    return low + (high - low) * (double)ob_rng_uniform(stream, index);
}

/* The whole image trimmed to the ratio range, centred (integer offsets, as torchvision). */
static ob_crop_box fallback_crop(int width, int height) {
    double ratio = (double)width / height;
    long w = width, h = height;
    if (ratio < OB_RRC_MIN_RATIO)
        h = lround(width / OB_RRC_MIN_RATIO);
    else if (ratio > OB_RRC_MAX_RATIO)
        w = lround(height * OB_RRC_MAX_RATIO);
    return (ob_crop_box){(double)((width - w) / 2), (double)((height - h) / 2), (double)w, (double)h};
}

ob_crop_box ob_random_resized_crop(int width, int height, const ob_rng_stream *stream, uint64_t first_draw) {
    double area = (double)width * height;
    for (int attempt = 0; attempt < OB_RRC_ATTEMPTS; attempt++) {
        uint64_t draw = first_draw + (uint64_t)attempt * DRAWS_PER_ATTEMPT;
        double target = area * uniform_in(stream, draw + DRAW_AREA, OB_RRC_MIN_AREA, OB_RRC_MAX_AREA);
        double ratio =
            exp(uniform_in(stream, draw + DRAW_LOG_RATIO, log(OB_RRC_MIN_RATIO), log(OB_RRC_MAX_RATIO)));
        long w = lround(sqrt(target * ratio)), h = lround(sqrt(target / ratio));
        if (w < 1 || w > width || h < 1 || h > height) continue;
        uint32_t y = ob_rng_below(stream, first_draw + DRAW_OFFSET_Y, (uint32_t)(height - h + 1));
        uint32_t x = ob_rng_below(stream, first_draw + DRAW_OFFSET_X, (uint32_t)(width - w + 1));
        return (ob_crop_box){(double)x, (double)y, (double)w, (double)h};
    }
    return fallback_crop(width, height);
}

ob_crop_box ob_center_crop_box(int width, int height, int resize_side, int crop_side) {
    double side = (width < height ? width : height) * (double)crop_side / resize_side;
    return (ob_crop_box){(width - side) / 2, (height - side) / 2, side, side};
}

int ob_dct_scale_denom(ob_crop_box box, int out_side) {
    int denom = 8;
    while (denom > 1 && (box.width < (double)denom * out_side || box.height < (double)denom * out_side))
        denom /= 2;
    return denom;
}

ob_crop_box ob_crop_box_scaled(ob_crop_box box, int full_width, int full_height, int decoded_width,
                               int decoded_height) {
    double sx = (double)decoded_width / full_width, sy = (double)decoded_height / full_height;
    return (ob_crop_box){box.x * sx, box.y * sy, box.width * sx, box.height * sy};
}

/* One axis of the bilinear map: output o samples the source at
 * s = start + (o + 1/2) * length / out_side - 1/2 (pixel centres line up),
 * clamped to [0, n - 1], i.e. (1 - weight) * src[lower] + weight * src[upper]. */
typedef struct {
    int lower[OB_CROP_MAX_SIDE], upper[OB_CROP_MAX_SIDE];
    float weight[OB_CROP_MAX_SIDE];
} axis_taps;

static void axis_taps_fill(axis_taps *taps, double start, double length, int n, int out_side) {
    for (int o = 0; o < out_side; o++) {
        double s = start + (o + 0.5) * length / out_side - 0.5;
        s = s < 0 ? 0 : s > n - 1 ? n - 1 : s;
        int lower = (int)s;
        taps->lower[o] = lower;
        taps->upper[o] = lower + 1 < n ? lower + 1 : lower;
        taps->weight[o] = (float)(s - lower);
    }
}

void ob_resample_box(const ob_rgb8_image *image, ob_crop_box box, int out_side, bool flip,
                     const ob_pixel_norm *norm, float *out) {
    axis_taps rows, cols;
    axis_taps_fill(&rows, box.y, box.height, image->height, out_side);
    axis_taps_fill(&cols, box.x, box.width, image->width, out_side);
    /* (value / 255 - mean) / std as one multiply-add per value. */
    float scale[3], shift[3];
    for (int c = 0; c < 3; c++) {
        scale[c] = 1.0f / (255.0f * norm->std[c]);
        shift[c] = -norm->mean[c] / norm->std[c];
    }
    size_t stride = (size_t)image->width * 3;
    for (int oy = 0; oy < out_side; oy++) {
        const unsigned char *top = image->pixels + stride * rows.lower[oy];
        const unsigned char *bottom = image->pixels + stride * rows.upper[oy];
        float wy = rows.weight[oy];
        for (int ox = 0; ox < out_side; ox++) {
            int tap = flip ? out_side - 1 - ox : ox;
            int left = 3 * cols.lower[tap], right = 3 * cols.upper[tap];
            float wx = cols.weight[tap];
            float *pixel = out + ((size_t)oy * out_side + ox) * 3;
            for (int c = 0; c < 3; c++) {
                float upper = top[left + c] + (top[right + c] - top[left + c]) * wx;
                float lower = bottom[left + c] + (bottom[right + c] - bottom[left + c]) * wx;
                pixel[c] = (upper + (lower - upper) * wy) * scale[c] + shift[c];
            }
        }
    }
}
