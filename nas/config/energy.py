"""``energy:``: assumptions for what is not measured, and the prices of what is (:mod:`nas.cost.energy`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from nas.config._schema import Float, section

NonNegative = Annotated[Float, Field(ge=0)]


@section
class EnergyConfig:
    """Assumptions for what is not measured, and the prices of what is. Every default has its source below.

    cpu_watts_per_core: W drawn per CPU core held (hyperthread = core, as Ray counts CPUs). Default 10 W: the
        TDP per core of common parts (the Green Algorithms method, Lannelongue, Grealey & Inouye, Adv. Sci. 2021):
        Intel Xeon Gold 6148, 150 W / 20 cores = 7.5 W; Core i7-8700, 65 W / 6 = 10.8 W; AMD EPYC 7763,
        280 W / 64 = 4.4 W. 10 W is a round figure at the high end for servers, typical for desktops.
    gpu_watts: W of one whole GPU at load (a fraction held draws that fraction). Default 300 W: the board power
        of an NVIDIA V100 SXM2 and of an A100 80GB PCIe (NVIDIA datasheets); an H100 SXM is 700 W, a T4 70 W.
    grid_g_co2_per_kwh: grid carbon intensity, g CO2 per kWh. Default 475: the world average of power generation
        in 2018 (IEA, Global Energy & CO2 Status Report 2019). Use your grid's figure (e.g. electricitymaps).
    price_per_cpu_core_hour: money per CPU core (vCPU) hour. Default 0.048: AWS EC2 on-demand m5.large,
        2 vCPU for $0.096/h, us-east-1.
    price_per_gpu_hour: money per whole-GPU hour (host included). Default 3.06: AWS EC2 on-demand p3.2xlarge,
        one V100 for $3.06/h, us-east-1.
    currency: the currency of both prices (lower case, it goes into metric names: ``cost_usd``).
    pue: power usage effectiveness, facility energy / IT energy, applied to measured and estimated energy
        alike. Default 1.0: the devices' own energy only. The Uptime Institute's 2023 survey average is 1.58;
        large cloud operators report ~1.1.
    """

    cpu_watts_per_core: NonNegative = 10.0
    gpu_watts: NonNegative = 300.0
    grid_g_co2_per_kwh: NonNegative = 475.0
    price_per_cpu_core_hour: NonNegative = 0.048
    price_per_gpu_hour: NonNegative = 3.06
    currency: Annotated[str, StringConstraints(strict=True, pattern=r"^[a-z]{3}$")] = "usd"
    pue: Float = Field(1.0, ge=1.0)

    def estimate_joules(self, cpu_core_seconds: float, gpu_seconds: float = 0.0) -> tuple[float, float]:
        """Device energy (J, no PUE) of ``cpu_core_seconds`` core-seconds and ``gpu_seconds`` whole-GPU seconds:
        ``(cpu_J, gpu_J)``."""
        return cpu_core_seconds * self.cpu_watts_per_core, gpu_seconds * self.gpu_watts

    def co2_g(self, kwh: float) -> float:
        """Grams of CO2 for ``kwh`` of facility energy."""
        return kwh * self.grid_g_co2_per_kwh

    def cost(self, cpu_core_hours: float, gpu_hours: float) -> float:
        """Money (``currency``) for the device-hours held."""
        return cpu_core_hours * self.price_per_cpu_core_hour + gpu_hours * self.price_per_gpu_hour

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
