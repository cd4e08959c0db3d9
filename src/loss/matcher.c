/* Exact rectangular assignment by shortest augmenting paths, and DETR's
 * matching cost. See include/cldetr/matcher.h. */
#include "cldetr/matcher.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cldetr/box.h"
#include "cldetr/common.h"

/* Assign each of n rows to a distinct one of m >= n columns at minimum total
 * cost a(i,j) = a[i*m + j]. Rows are added one at a time; for each, a
 * Dijkstra-like search over columns with reduced costs a(i,j) - u[i] - v[j]
 * (all >= 0 for matched pairs) finds the cheapest augmenting path, then the
 * potentials are raised so that the reduced costs stay non-negative.
 * Arrays are 1-based here; column 0 is a virtual start column.
 * Writes col_of_row[n] (0-based). */
static void sap_assign(size_t *col_of_row, const double *a, size_t n, size_t m) {
    double *u = cd_xcalloc(n + 1, sizeof *u);     /* row potentials */
    double *v = cd_xcalloc(m + 1, sizeof *v);     /* column potentials */
    double *minv = cd_xmalloc((m + 1) * sizeof *minv);
    size_t *row_of_col = cd_xcalloc(m + 1, sizeof *row_of_col);  /* 0 = free */
    size_t *way = cd_xcalloc(m + 1, sizeof *way);  /* previous column on the path */
    unsigned char *used = cd_xmalloc(m + 1);

    for (size_t i = 1; i <= n; i++) {
        row_of_col[0] = i;
        size_t j0 = 0;
        for (size_t j = 0; j <= m; j++) minv[j] = INFINITY;
        memset(used, 0, m + 1);
        do {
            used[j0] = 1;
            size_t i0 = row_of_col[j0], j1 = 0;
            double delta = INFINITY;
            const double *arow = a + (i0 - 1) * m;   /* arow[j - 1], j = 1..m */
            for (size_t j = 1; j <= m; j++) {
                if (used[j]) continue;
                double cur = arow[j - 1] - u[i0] - v[j];
                if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
                if (minv[j] < delta) { delta = minv[j]; j1 = j; }
            }
            /* j1 exists: fewer than n <= m real columns are in the tree. */
            for (size_t j = 0; j <= m; j++) {
                if (used[j]) { u[row_of_col[j]] += delta; v[j] -= delta; }
                else minv[j] -= delta;
            }
            j0 = j1;
        } while (row_of_col[j0] != 0);
        do {   /* flip the path back to the start */
            size_t j1 = way[j0];
            row_of_col[j0] = row_of_col[j1];
            j0 = j1;
        } while (j0 != 0);
    }
    for (size_t j = 1; j <= m; j++)
        if (row_of_col[j]) col_of_row[row_of_col[j] - 1] = j - 1;
    free(u); free(v); free(minv); free(row_of_col); free(way); free(used);
}

int matcher_solve(size_t *rows, size_t *cols, double *total,
                  const double *cost, size_t R, size_t C) {
    if (total) *total = 0;
    for (size_t i = 0; i < R * C; i++)
        if (!isfinite(cost[i]))
            return cd_seterr("matcher: cost[%zu,%zu] is %g; the matching cost must be finite",
                             i / C, i % C, cost[i]);
    size_t n = CD_MIN(R, C);
    if (n == 0) return 0;
    size_t *match = cd_xmalloc(n * sizeof *match);
    if (R <= C) {
        sap_assign(match, cost, R, C);
        for (size_t i = 0; i < R; i++) { rows[i] = i; cols[i] = match[i]; }
    } else {
        /* More rows than columns: solve the transpose (columns as rows), then
         * list the pairs by row. */
        double *t = cd_xmalloc(R * C * sizeof *t);
        for (size_t i = 0; i < R; i++)
            for (size_t j = 0; j < C; j++) t[j * R + i] = cost[i * C + j];
        sap_assign(match, t, C, R);       /* match[j] = row of column j */
        free(t);
        unsigned char *hit = cd_xcalloc(R, 1);
        size_t *col_of = cd_xmalloc(R * sizeof *col_of);
        for (size_t j = 0; j < C; j++) { hit[match[j]] = 1; col_of[match[j]] = j; }
        size_t k = 0;
        for (size_t i = 0; i < R; i++)
            if (hit[i]) { rows[k] = i; cols[k] = col_of[i]; k++; }
        free(hit); free(col_of);
    }
    free(match);
    if (total) {
        double s = 0;
        for (size_t k = 0; k < n; k++) s += cost[rows[k] * C + cols[k]];
        *total = s;
    }
    return 0;
}

void matcher_detr_cost(double *cost, const double *prob, const double *pbox,
                       const int *labels, const double *tbox,
                       size_t Q, size_t K1, size_t T, const matcher_weights *w) {
    for (size_t q = 0; q < Q; q++) {
        const double *pb = pbox + 4 * q;
        double pxy[4];
        box_cxcywh_to_xyxy(pxy, pb);
        for (size_t t = 0; t < T; t++) {
            const double *tb = tbox + 4 * t;
            double txy[4];
            box_cxcywh_to_xyxy(txy, tb);
            double l1 = fabs(pb[0] - tb[0]) + fabs(pb[1] - tb[1]) +
                        fabs(pb[2] - tb[2]) + fabs(pb[3] - tb[3]);
            double p = prob[q * K1 + (size_t)labels[t]];
            cost[q * T + t] = w->cost_bbox * l1 + w->cost_class * -p +
                              w->cost_giou * -box_giou(pxy, txy);
        }
    }
}
