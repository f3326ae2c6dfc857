from .agc_optim_wrapper_constructor import AGCOptimWrapperConstructor

__all__ = ['AGCOptimWrapperConstructor']
