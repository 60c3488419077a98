/* png.c: writing RGB pictures as PNG (libpng) and drawing the training-curve chart: two panels
 * (training loss; validation top-1 / top-5 error in %) with axes, grid, numbered ticks, titles and
 * a legend, lettered with the small 5x7 bitmap font defined below. */
#include "png.h"
#include "common.h"
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h> /* libpng; the quoted "png.h" above is ours */

/* ---- writing ------------------------------------------------------------------------------- */

static void png_write_on_error(png_structp png, png_const_charp msg) {
    char *dst = png_get_error_ptr(png);
    snprintf(dst, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_write_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int png_write_rgb(const char *path, const uint8_t *rgb, int w, int h) {
    if (!rgb || w <= 0 || h <= 0 || w > 1000000 || h > 1000000)
        return an_error("%s: bad image size %dx%d for PNG", path, w, h);
    FILE *f = fopen(path, "wb");
    if (!f) return an_error("%s: cannot open for writing: %s", path, strerror(errno));
    char msg[256] = "";
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, msg, png_write_on_error,
                                              png_write_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return an_error("%s: out of memory starting the PNG encoder", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return an_error("%s: cannot write PNG: %s", path, msg);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) return an_error("%s: write error: %s", path, strerror(errno));
    return 0;
}

/* ---- a tiny canvas ------------------------------------------------------------------------- */

typedef struct {
    uint8_t *px; /* (h, w, 3) */
    int w, h;
} Canvas;

typedef struct { uint8_t r, g, b; } Color;

static const Color WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GRID = {225, 225, 225},
                   LOSS = {44, 110, 190}, TOP1 = {31, 119, 180}, TOP5 = {230, 110, 20};

static void put(Canvas *cv, int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= cv->w || y >= cv->h) return;
    uint8_t *p = cv->px + ((size_t)y * cv->w + x) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

static void fill_rect(Canvas *cv, int x0, int y0, int x1, int y1, Color c) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(cv, x, y, c);
}

/* Bresenham line, `thick` pixels wide (a square brush) */
static void line(Canvas *cv, int x0, int y0, int x1, int y1, int thick, Color c) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy, lo = -(thick - 1) / 2, hi = thick / 2;
    for (;;) {
        fill_rect(cv, x0 + lo, y0 + lo, x0 + hi, y0 + hi, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) { err += dy; x0 += sx; }
        if (e2 <= dx) { err += dx; y0 += sy; }
    }
}

static void disc(Canvas *cv, int cx, int cy, int r, Color c) {
    for (int y = -r; y <= r; y++)
        for (int x = -r; x <= r; x++)
            if (x * x + y * y <= r * r + r) put(cv, cx + x, cy + y, c);
}

/* ---- the 5x7 font -------------------------------------------------------------------------- */
/* Each glyph is 5 columns by 7 rows above the baseline plus 2 descender rows (g, j, p, q, y, ','),
 * top row first; bit 4 (0x10) is the leftmost column. Uppercase letters use the lowercase shapes. */
typedef struct { char ch; uint8_t rows[9]; } Glyph;

static const Glyph FONT[] = {
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E, 0x00, 0x00}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E, 0x00, 0x00}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02, 0x00, 0x00}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E, 0x00, 0x00}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E, 0x00, 0x00}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08, 0x00, 0x00}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E, 0x00, 0x00}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C, 0x00, 0x00}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F, 0x00, 0x00}},
    {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E, 0x00, 0x00}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E, 0x00, 0x00}},
    {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F, 0x00, 0x00}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E, 0x00, 0x00}},
    {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08, 0x00, 0x00}},
    {'g', {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}},
    {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12, 0x00, 0x00}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E, 0x00, 0x00}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11, 0x00, 0x00}},
    {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11, 0x00, 0x00}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E, 0x00, 0x00}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10, 0x00, 0x00}},
    {'s', {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E, 0x00, 0x00}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06, 0x00, 0x00}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D, 0x00, 0x00}},
    {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04, 0x00, 0x00}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A, 0x00, 0x00}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x00, 0x00}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F, 0x00, 0x00}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C, 0x00, 0x00}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03, 0x00, 0x00}},
    {'-', {0x00, 0x00, 0x00, 0x0E, 0x00, 0x00, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00, 0x00, 0x00}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02, 0x00, 0x00}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08, 0x00, 0x00}},
    {'/', {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00, 0x00, 0x00}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00, 0x00, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00}},
};

static const Glyph *glyph(char ch) {
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    for (size_t i = 0; i < sizeof FONT / sizeof FONT[0]; i++)
        if (FONT[i].ch == ch) return &FONT[i];
    return NULL; /* space and unknown characters draw nothing */
}

static int text_width(const char *s, int scale) {
    int n = (int)strlen(s);
    return n ? (6 * n - 1) * scale : 0;
}

/* s with its top-left corner at (x, y); each font pixel is scale x scale */
static void text(Canvas *cv, int x, int y, const char *s, int scale, Color c) {
    for (; *s; s++, x += 6 * scale) {
        const Glyph *g = glyph(*s);
        if (!g) continue;
        for (int r = 0; r < 9; r++)
            for (int col = 0; col < 5; col++)
                if (g->rows[r] & (0x10 >> col))
                    fill_rect(cv, x + col * scale, y + r * scale, x + col * scale + scale - 1,
                              y + r * scale + scale - 1, c);
    }
}

/* ---- axes ---------------------------------------------------------------------------------- */

#define PANEL_W 500
#define PLOT_LEFT 80   /* from the panel's left edge */
#define PLOT_RIGHT 478
#define PLOT_TOP 48
#define PLOT_BOTTOM 356
#define PLOT_PAD 10     /* data range inset from the frame */
#define FONT_SCALE 2
#define MAX_TICKS 24

typedef struct {
    int left, right, top, bottom;   /* plot area in pixels */
    double xlo, xhi, ylo, yhi, ystep; /* data range */
} Axes;

/* pixel coordinate, kept well inside int range whatever the value */
static int to_px(double v) {
    if (!(v > -1e5)) return -100000;
    if (v > 1e5) return 100000;
    return (int)lround(v);
}

/* data to pixels; the range maps PLOT_PAD pixels inside the frame so edge points stay clear */
static int ax_x(const Axes *a, double x) {
    double w = a->right - a->left - 2 * PLOT_PAD;
    return to_px(a->left + PLOT_PAD + (x - a->xlo) / (a->xhi - a->xlo) * w);
}

static int ax_y(const Axes *a, double y) {
    double h = a->bottom - a->top - 2 * PLOT_PAD;
    return to_px(a->bottom - PLOT_PAD - (y - a->ylo) / (a->yhi - a->ylo) * h);
}

/* A 1-2-5 step giving about `target` intervals over [lo, hi]. */
static double nice_step(double span, double target) {
    double raw = span / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* y range of the finite values of up to two series, widened to whole steps */
static void y_range(Axes *a, int n, const double *s1, const double *s2) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (s1 && isfinite(s1[i])) { lo = fmin(lo, s1[i]); hi = fmax(hi, s1[i]); }
        if (s2 && isfinite(s2[i])) { lo = fmin(lo, s2[i]); hi = fmax(hi, s2[i]); }
    }
    if (!(lo <= hi)) { lo = 0.0; hi = 1.0; }                 /* nothing to draw */
    if (!isfinite(hi - lo)) { lo = fmax(lo, -1e300); hi = fmin(hi, 1e300); lo /= 2; hi /= 2; }
    int nonneg = lo >= 0.0;
    if (hi - lo <= fabs(hi) * 1e-9) {                          /* a flat series */
        double pad = fabs(lo) > 0.0 ? fabs(lo) * 0.1 : 1.0;
        lo -= pad;
        hi += pad;
    }
    double step = nice_step(hi - lo, 5.0);
    a->ylo = floor(lo / step) * step;
    a->yhi = ceil(hi / step) * step;
    if (nonneg && a->ylo < 0.0) a->ylo = 0.0;
    if (a->yhi <= a->ylo) a->yhi = a->ylo + step;
    a->ystep = step;
}

static void tick_label(char *buf, size_t n, double v, double step) {
    int decimals = step >= 1.0 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (decimals > 6) decimals = 6;
    if (fabs(v) < step * 1e-6) v = 0.0; /* no "-0.0" */
    snprintf(buf, n, "%.*f", decimals, v);
}

static void draw_axes(Canvas *cv, const Axes *a, const char *title, int n) {
    char buf[64];
    int ny = (int)lround((a->yhi - a->ylo) / a->ystep);
    if (ny > MAX_TICKS) ny = MAX_TICKS;
    for (int k = 0; k <= ny; k++) {
        double v = a->ylo + k * a->ystep;
        int y = ax_y(a, v);
        line(cv, a->left, y, a->right, y, 1, GRID);
        line(cv, a->left - 5, y, a->left, y, 1, BLACK);
        tick_label(buf, sizeof buf, v, a->ystep);
        text(cv, a->left - 9 - text_width(buf, FONT_SCALE), y - 7, buf, FONT_SCALE, BLACK);
    }
    long xstep = (long)nice_step(n > 1 ? n : 1, 8.0);
    if (xstep < 1) xstep = 1;
    for (long e = xstep; e <= n && e / xstep <= MAX_TICKS; e += xstep) {
        int x = ax_x(a, (double)e);
        line(cv, x, a->bottom, x, a->bottom + 5, 1, BLACK);
        snprintf(buf, sizeof buf, "%ld", e);
        text(cv, x - text_width(buf, FONT_SCALE) / 2, a->bottom + 10, buf, FONT_SCALE, BLACK);
    }
    line(cv, a->left, a->top, a->left, a->bottom, 1, BLACK);
    line(cv, a->left, a->bottom, a->right, a->bottom, 1, BLACK);
    line(cv, a->right, a->top, a->right, a->bottom, 1, BLACK);
    line(cv, a->left, a->top, a->right, a->top, 1, BLACK);
    int title_x = (a->left + a->right - text_width(title, FONT_SCALE)) / 2;
    text(cv, title_x, 14, title, FONT_SCALE, BLACK);
    text(cv, (a->left + a->right - text_width("epoch", FONT_SCALE)) / 2, a->bottom + 34, "epoch",
         FONT_SCALE, BLACK);
}

/* points joined by lines; non-finite values are skipped (the line bridges the gap) */
static void draw_series(Canvas *cv, const Axes *a, int n, const double *v, Color c) {
    int have_prev = 0, px = 0, py = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i])) continue;
        int x = ax_x(a, i + 1.0), y = ax_y(a, v[i]);
        if (have_prev) line(cv, px, py, x, y, 2, c);
        disc(cv, x, y, 3, c);
        px = x;
        py = y;
        have_prev = 1;
    }
}

static void draw_legend(Canvas *cv, const Axes *a) {
    static const char *names[2] = {"top-1", "top-5"};
    const Color colors[2] = {TOP1, TOP5};
    int x0 = a->right - 120, y0 = a->top + 8;
    fill_rect(cv, x0, y0, a->right - 8, y0 + 50, WHITE);
    line(cv, x0, y0, a->right - 8, y0, 1, BLACK);
    line(cv, x0, y0 + 50, a->right - 8, y0 + 50, 1, BLACK);
    line(cv, x0, y0, x0, y0 + 50, 1, BLACK);
    line(cv, a->right - 8, y0, a->right - 8, y0 + 50, 1, BLACK);
    for (int k = 0; k < 2; k++) {
        int y = y0 + 14 + 22 * k;
        line(cv, x0 + 8, y, x0 + 36, y, 2, colors[k]);
        disc(cv, x0 + 22, y, 3, colors[k]);
        text(cv, x0 + 44, y - 7, names[k], FONT_SCALE, BLACK);
    }
}

static Axes panel_axes(int panel, int n) {
    Axes a;
    a.left = panel * PANEL_W + PLOT_LEFT;
    a.right = panel * PANEL_W + PLOT_RIGHT;
    a.top = PLOT_TOP;
    a.bottom = PLOT_BOTTOM;
    a.xlo = n > 1 ? 1.0 : 0.0; /* one epoch: its point in the middle */
    a.xhi = n > 1 ? n : 2.0;
    return a;
}

int plot_curves(const char *path, int n, const double *train_loss, const double *val_top1,
                const double *val_top5) {
    if (n < 0) return an_error("%s: bad number of epochs %d", path, n);
    Canvas cv = {NULL, 1000, 420};
    cv.px = malloc((size_t)cv.w * cv.h * 3);
    if (!cv.px) return an_error("%s: out of memory for the chart", path);
    memset(cv.px, 255, (size_t)cv.w * cv.h * 3);

    Axes loss = panel_axes(0, n), err = panel_axes(1, n);
    y_range(&loss, n, train_loss, NULL);
    y_range(&err, n, val_top1, val_top5);
    draw_axes(&cv, &loss, "training loss", n);
    draw_axes(&cv, &err, "validation error (%)", n);
    if (train_loss) draw_series(&cv, &loss, n, train_loss, LOSS);
    if (val_top5) draw_series(&cv, &err, n, val_top5, TOP5);
    if (val_top1) draw_series(&cv, &err, n, val_top1, TOP1);
    draw_legend(&cv, &err);

    int rc = png_write_rgb(path, cv.px, cv.w, cv.h);
    free(cv.px);
    return rc;
}

/* ---- several series in one panel (experiment curves) ---- */

int plot_lines(const char *path, const char *title, int n, int nseries, const double *const *series,
               const char *const *names, double hline) {
    static const Color palette[6] = {{200, 40, 40}, {40, 90, 200}, {230, 130, 30}, {40, 150, 70}, {150, 60, 170},
                                     {110, 110, 110}};
    if (n < 0 || nseries < 1 || nseries > 6) return an_error("%s: bad chart (%d points, %d series)", path, n, nseries);
    Canvas cv = {NULL, PANEL_W + 340, 420};
    cv.px = malloc((size_t)cv.w * cv.h * 3);
    if (!cv.px) return an_error("%s: out of memory for the chart", path);
    memset(cv.px, 255, (size_t)cv.w * cv.h * 3);
    Axes a = panel_axes(0, n);
    double lo = isfinite(hline) ? hline : INFINITY, hi = isfinite(hline) ? hline : -INFINITY;
    for (int k = 0; k < nseries; k++)
        for (int i = 0; i < n; i++)
            if (isfinite(series[k][i])) lo = fmin(lo, series[k][i]), hi = fmax(hi, series[k][i]);
    double span[2] = {lo, hi};
    y_range(&a, isfinite(lo) ? 2 : 0, span, NULL);
    draw_axes(&cv, &a, title, n);
    if (isfinite(hline)) {
        int y = ax_y(&a, hline);
        for (int x = a.left; x < a.right; x += 12) line(&cv, x, y, x + 6 < a.right ? x + 6 : a.right, y, 1, BLACK);
    }
    for (int k = 0; k < nseries; k++) draw_series(&cv, &a, n, series[k], palette[k]);
    for (int k = 0; k < nseries; k++) { /* the legend, right of the panel */
        int x0 = PANEL_W, y = PLOT_TOP + 14 + 26 * k;
        line(&cv, x0, y, x0 + 28, y, 2, palette[k]);
        disc(&cv, x0 + 14, y, 3, palette[k]);
        text(&cv, x0 + 36, y - 7, names[k], FONT_SCALE, BLACK);
    }
    int rc = png_write_rgb(path, cv.px, cv.w, cv.h);
    free(cv.px);
    return rc;
}
