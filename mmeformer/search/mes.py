"""The Mobile Efficiency Score of EfficientFormerV2 (arXiv 2212.08059,
Section 4): one number for the size and the speed of a network."""
from dataclasses import dataclass

__all__ = ['MobileEfficiencyScore']


@dataclass(frozen=True)
class MobileEfficiencyScore:
    """``MES = score * (latency / latency_unit) ** -latency_alpha *
    (params / params_unit) ** -params_alpha``.

    The paper's base score is 100 and it weighs size and latency equally;
    its units are its reference network's latency and size on its device.
    The units only scale every MES by the same factor, so they change no
    choice of the search (which compares MES gains in ratio to accuracy
    drops of the candidates of one step); the alphas do.

    Args:
        score (float): Base score. Defaults to 100.
        latency_unit (float): Latency unit in ms. Defaults to 1.
        params_unit (float): Parameter unit, in millions. Defaults to 1.
        latency_alpha (float): Weight of latency. Defaults to 0.5.
        params_alpha (float): Weight of size. Defaults to 0.5.

    Example:
        >>> mes = MobileEfficiencyScore()
        >>> mes(latency_ms=4., params_m=1.)
        50.0
    """

    score: float = 100.
    latency_unit: float = 1.
    params_unit: float = 1.
    latency_alpha: float = 0.5
    params_alpha: float = 0.5

    def __call__(self, latency_ms: float, params_m: float) -> float:
        """The MES of a network.

        Args:
            latency_ms (float): Its latency, ms (> 0).
            params_m (float): Its parameters, millions (> 0).

        Returns:
            float: The score; larger is more efficient.
        """
        if latency_ms <= 0 or params_m <= 0:
            raise ValueError('MES needs a positive latency and size, got '
                             f'{latency_ms} ms and {params_m} M')
        return (self.score *
                (latency_ms / self.latency_unit)**-self.latency_alpha *
                (params_m / self.params_unit)**-self.params_alpha)
