"""Planning and control with a trajectory generator, one network evaluation per plan or chunk.

- `planner`: plans from a start-goal network (Planner, PlanSettings, Plan, smoothing, selection);
- `executor`: maze2d's tracking controller running plans in an env (run_episode);
- `rollouts`: scoring a maze2d planner over fixed-seed episodes (RolloutConfig, evaluate_planner);
- `conditions`: the in- and out-of-distribution conditions of a split and scoring under each;
- `chunks`: receding-horizon control with action chunks (ChunkPolicy, run_chunked; Push-T).

    net = StartGoalNet(transformer, obs_dim=4, conditioning="both")   # mmftraj.models.start_goal
    planner = Planner(net, obs_normalizer, steps=1, mode="mean", candidates=16, layout=layout)
    plan = planner.plan(obs, goal)           # Plan: states (H, 4) raw units, arrival index, candidates
    episode = run_episode(env, planner, replan_every=8, seed=0)   # return, score, path, plans
"""

from .executor import Episode, run_episode, tracking_action
from .planner import Plan, Planner, PlanSettings, first_arrival, select_plan, smooth_plans, wall_hits

__all__ = ["Episode", "Plan", "PlanSettings", "Planner", "first_arrival", "run_episode", "select_plan", "smooth_plans",
           "tracking_action", "wall_hits"]
