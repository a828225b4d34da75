from __future__ import annotations

from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models
from django.utils import timezone

from accounts.validators import plain_text


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        if not email:
            raise ValueError("an email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(
        self, email: str, password: str | None = None, **extra
    ) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with an email address."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True, validators=[plain_text])
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    def __str__(self) -> str:
        return self.email


class Account(models.Model):
    """The billing account: it owns the balance, keys and invoices.

    A model of its own (not columns on User) so that a team can share one later.
    """

    owner = models.OneToOneField(User, on_delete=models.PROTECT, related_name="account")
    name = models.CharField(max_length=200, blank=True, validators=[plain_text])
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        # Named after its owner when it has no name of its own.
        if self.name:
            return self.name
        owner = self.owner
        if owner.full_name:
            return f"{owner.full_name} <{owner.email}>"
        return owner.email

    @property
    def email(self) -> str:
        # dj-stripe's subscriber model needs an email for the Stripe customer.
        return self.owner.email


class BillingProfile(models.Model):
    """Who is billed: printed on invoices (each invoice keeps a snapshot)."""

    account = models.OneToOneField(
        Account, on_delete=models.PROTECT, primary_key=True, related_name="profile"
    )
    name = models.CharField(
        "full name or company", max_length=200, validators=[plain_text]
    )
    country = models.CharField(
        max_length=2, help_text="ISO 3166-1 alpha-2, e.g. US", validators=[plain_text]
    )
    address_line1 = models.CharField("address", max_length=200, validators=[plain_text])
    address_line2 = models.CharField(
        "address (line 2)", max_length=200, blank=True, validators=[plain_text]
    )
    city = models.CharField(max_length=100, validators=[plain_text])
    state = models.CharField(
        "state or region", max_length=100, blank=True, validators=[plain_text]
    )
    postal_code = models.CharField(max_length=20, blank=True, validators=[plain_text])
    tax_id = models.CharField(
        "tax ID", max_length=50, blank=True, validators=[plain_text]
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict:
        return {
            "name": self.name,
            "email": self.account.owner.email,
            "country": self.country,
            "address_line1": self.address_line1,
            "address_line2": self.address_line2,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
            "tax_id": self.tax_id,
        }
