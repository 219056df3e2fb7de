/* sim_plan_int: helpers shared by the ordinary-traffic planner (sim_plan.c)
 * and the incident planner (sim_incidents.c); not used outside planning. */
#ifndef SIM_PLAN_INT_H
#define SIM_PLAN_INT_H

#include "sim_gen.h"

#define SIM_HOUR_US 3600000000LL
#define SIM_MIN_US 60000000LL

struct sim_session *sim_new_session(struct sim_gen *g, int64_t t, int ident, int server, int net,
                                    uint32_t host, int incident, struct sim_rng *r);
struct sim_req *sim_new_req(struct sim_gen *g, struct sim_session *s, int64_t want);
void sim_normal_req(struct sim_gen *g, struct sim_rng *r, int i, int cred, struct sim_req *q);
int sim_day_cred(struct sim_gen *g, int i, int64_t day_start);
void sim_spread(struct sim_gen *g, struct sim_rng *r, int i, int64_t a, int64_t b, int n, int net,
                int cred, int incident);
void sim_render_path(char *out, size_t cap, const char *tpl, int id);
void sim_date_add(int y, int m, int d, int add, int *oy, int *om, int *od, int *wday);
void sim_add_query_cred(struct sim_gen *g, struct sim_req *q);
void sim_b64(const uint8_t *in, size_t n, char *out, bool url);

int sim_plan_incident(struct sim_gen *g, int k);
void sim_plan_noise(struct sim_gen *g);

#endif
