"""The pack's methods in the order of the README's methods table: each method module's METHOD_INFO."""
from . import (adaptive_guidance, apg, asag, autoguidance, beta_cfg, cfg_cache, cfg_schedule, cfg_zero_star, cfgpp,
               domain_guidance, dynamic_thresholding, fdg, icg, linear_ag, nag, pag, perpneg, personalization, pladis,
               rcfg, rescale_cfg, rlg, s2, sag, scfg, schedule, seg, slg, spg, tcfg, tpg, tsg, unconditional_prior, vsf)
from .common import PREFIX
from .method_info import MethodInfo

METHODS: tuple[MethodInfo, ...] = tuple(module.METHOD_INFO for module in (
    apg, pag, sag, seg, scfg, spg, asag, pladis, slg, tpg, s2, cfg_schedule, schedule, tcfg, rescale_cfg,
    cfg_zero_star, dynamic_thresholding, fdg, beta_cfg, icg, tsg, adaptive_guidance, cfg_cache, linear_ag, rcfg, cfgpp,
    perpneg, nag, vsf, autoguidance, unconditional_prior, domain_guidance, rlg, personalization))


def by_node_id() -> dict[str, MethodInfo]:
    """{full node id ('GuidanceZooPAG'): its method} over every node of every method."""
    return {node_id: method for method in METHODS for node_id in method.node_ids(PREFIX)}
