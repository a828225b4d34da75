from django.apps import AppConfig


class GiftsConfig(AppConfig):
    name = "gifts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # A gift card is a payment whose purpose is not the payer's credits:
        # billing calls these instead of crediting or clawing back the payer.
        from billing.payments.purposes import purpose_register
        from gifts.purchases import gift_card_paid, gift_card_reversed

        purpose_register("gift_card", paid=gift_card_paid, reversed=gift_card_reversed)
