"""io7-sim: a car park's day in virtual time, with the master's and agents' pure cores.

The one place that composes both sides of the cluster (master.control and the agent's
limit applier and connector machines) around hw.sim's EV and site models; master proper
never imports agent. Modules: scenario (the file format and checks), generator (random
days), sessionlog and replay (a back office's session log on a site, the what-ifs),
agents and controllers (who does what each cycle), run (the loop), kpi and possible (the
measures), plot, cli (`io7-sim`).
"""
